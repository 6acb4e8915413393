"""Symlinks, x-oss-process parameters that name other objects, and the V1 signed sub-resource list.

Expected answers come from the OSS API reference: PutSymlink / GetSymlink
(https://www.alibabacloud.com/help/en/oss/developer-reference/putsymlink, .../getsymlink: PutSymlink needs
oss:PutObject on the link and does not check the target; GetSymlink needs read permission on the link and
answers x-oss-symlink-target), HeadObject (a link answers the target's Content-Length/ETag, 404
SymlinkTargetNotExist for a missing target, 400 InvalidTargetType for a link to a link), and the image
watermark reference (https://www.alibabacloud.com/help/en/oss/user-guide/add-watermarks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
from collections.abc import Iterator
from email.utils import formatdate
from urllib.parse import quote

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from local.cloud import LocalCloud
from tests.local.helpers import send
from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET, Clock, Env, make_config, v2_client

MODES = ["root-v1", "root-v4", "sts-v1", "sts-v4"]
ALICE = "users/alice/"
BOB_SECRET = "users/bob/secret.txt"


def alice_only() -> dict:
    return {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject"],
         "Resource": [f"acs:oss:*:*:{BUCKET}/{ALICE}*"]},
    ]}


def oss2_bucket(env: Env, mode: str, policy: dict | None = None) -> oss2.Bucket:
    v1 = mode.endswith("v1")
    if mode.startswith("root"):
        auth = oss2.Auth(ROOT_AK, ROOT_SECRET) if v1 else oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    else:
        session = env.session(policy)
        auth = oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token,
                            auth_version=oss2.AUTH_VERSION_1 if v1 else oss2.AUTH_VERSION_4)
    return oss2.Bucket(auth, env.endpoint, BUCKET, region=REGION)


def server_error(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as raised:
        call()
    return raised.value


@pytest.fixture
def seeded(shared_env: Env) -> Env:
    root = oss2_bucket(shared_env, "root-v4")
    root.put_object(BOB_SECRET, b"bob's secret", headers={"Content-Type": "text/plain"})
    root.put_object(ALICE + "own.txt", b"alice's own")
    root.put_object("users/bob/pic.png", b"\x89PNG bob")
    root.put_object(ALICE + "pic.png", b"\x89PNG alice")
    shared_env.cloud.api.reads.clear()
    return shared_env


@pytest.mark.parametrize("mode", MODES)
def test_oss2_symlink_round_trip(seeded: Env, mode: str) -> None:
    bucket = oss2_bucket(seeded, mode)
    link = f"links/{mode}/报告 a+b.txt"
    target = f"links/{mode}/目标 target.txt"
    body = os.urandom(777)
    bucket.put_object(target, body)
    result = bucket.put_symlink(target, link, headers={"x-oss-meta-who": "link", "Content-Type": "text/x-link"})
    assert result.status == 200

    assert bucket.get_symlink(link).target_key == target
    head = bucket.head_object(link)
    assert head.headers["x-oss-object-type"] == "Symlink"
    assert head.content_length == 777  # the target's length and ETag (HeadObject reference)
    assert head.etag == hashlib.md5(body).hexdigest().upper()
    assert head.headers["x-oss-meta-who"] == "link"  # other metadata is the link's
    assert head.content_type == "text/x-link"
    assert bucket.get_object(link).read() == body
    assert bucket.get_object(link, byte_range=(10, 19)).read() == body[10:20]
    assert bucket.get_object_meta(link).content_length == 777
    listed = {o.key: o for o in oss2.ObjectIterator(bucket, prefix=f"links/{mode}/")}
    assert listed[link].type == "Symlink"
    reads = [r for r in seeded.cloud.object_reads() if r.requested_key == link]
    assert reads and all(r.read_key == target and r.via == "symlink" for r in reads)


@pytest.mark.parametrize("mode", ["root-v4", "root-v1", "sts-v4", "sts-v1"])
def test_v2_sdk_symlink_round_trip(seeded: Env, mode: str) -> None:
    client = v2_client(seeded, mode)
    target, link = f"v2links/{mode}/target.bin", f"v2links/{mode}/link"
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=target, body=b"through the link"))
    put = client.put_symlink(oss.PutSymlinkRequest(bucket=BUCKET, key=link, symlink_target=target))
    assert put.status_code == 200
    got = client.get_symlink(oss.GetSymlinkRequest(bucket=BUCKET, key=link))
    assert got.target == target
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=link))
    assert head.object_type == "Symlink"
    assert head.content_length == len(b"through the link")
    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=link)).body.read() == b"through the link"


def test_symlink_errors(seeded: Env) -> None:
    bucket = oss2_bucket(seeded, "root-v4")
    bucket.put_symlink("nowhere/missing.txt", "errs/dangling")  # the target is not checked at creation
    for call in (lambda: bucket.get_object("errs/dangling"), lambda: bucket.head_object("errs/dangling")):
        error = server_error(call)
        assert error.status == 404
        if not isinstance(error, oss2.exceptions.NotFound) or error.code:  # HEAD: code from x-oss-err
            assert error.code == "SymlinkTargetNotExist"
    bucket.put_object("errs/real", b"x")
    bucket.put_symlink("errs/real", "errs/link1")
    bucket.put_symlink("errs/link1", "errs/link2")  # a link to a link can be created ...
    error = server_error(lambda: bucket.get_object("errs/link2"))  # ... but not followed
    assert (error.status, error.code) == (400, "InvalidTargetType")
    error = server_error(lambda: bucket.get_symlink("errs/real"))
    assert (error.status, error.code) == (400, "NotSymlink")
    error = server_error(lambda: bucket.get_symlink("errs/none"))
    assert (error.status, error.code) == (404, "NoSuchKey")
    answer = send("PUT", f"{seeded.endpoint}/{BUCKET}/errs/no-target?symlink",
                  headers={"Authorization": "x"})
    assert answer.status in (400, 403)


def test_put_symlink_checks_only_the_link(seeded: Env) -> None:
    """PutSymlink needs oss:PutObject on the link only: an out-of-scope target is accepted at creation,
    and refused when read through the link (the emulator evaluates the requester's policy on the target)."""
    alice = oss2_bucket(seeded, "sts-v4", alice_only())
    alice.put_symlink(BOB_SECRET, ALICE + "ln")
    error = server_error(lambda: alice.get_object(ALICE + "ln"))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert not [r for r in seeded.cloud.object_reads() if r.read_key == BOB_SECRET]
    assert alice.get_symlink(ALICE + "ln").target_key == BOB_SECRET  # GetSymlink: read permission on the link
    assert alice.get_object(ALICE + "own.txt").read() == b"alice's own"
    error = server_error(lambda: alice.put_symlink(ALICE + "own.txt", "users/bob/ln"))
    assert (error.status, error.code) == (403, "AccessDenied")
    # the root key reads through the link, and the read log names the target actually read
    root = oss2_bucket(seeded, "root-v4")
    assert root.get_object(ALICE + "ln").read() == b"bob's secret"
    read = seeded.cloud.object_reads()[-1]
    assert (read.requested_key, read.read_key, read.via) == (ALICE + "ln", BOB_SECRET, "symlink")


def test_get_symlink_needs_read_on_the_link(seeded: Env) -> None:
    write_only = {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:PutObject"], "Resource": [f"acs:oss:*:*:{BUCKET}/{ALICE}*"]}]}
    bucket = oss2_bucket(seeded, "sts-v1", write_only)
    bucket.put_symlink(ALICE + "own.txt", ALICE + "wo-link")
    error = server_error(lambda: bucket.get_symlink(ALICE + "wo-link"))
    assert (error.status, error.code) == (403, "AccessDenied")


@pytest.fixture(scope="module")
def link_only_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A cloud that models the weakest documented behaviour: policies checked against the link only."""
    data = tmp_path_factory.mktemp("linkonly") / "data"
    clock = Clock()
    with LocalCloud(make_config(data, clock, check_symlink_target_policy=False)) as cloud:
        yield Env(cloud, clock, data)


def test_link_only_mode_shows_the_cross_scope_read(link_only_env: Env) -> None:
    oss2_bucket(link_only_env, "root-v4").put_object(BOB_SECRET, b"bob's secret")
    alice = oss2_bucket(link_only_env, "sts-v4", alice_only())
    alice.put_symlink(BOB_SECRET, ALICE + "ln")
    assert alice.get_object(ALICE + "ln").read() == b"bob's secret"
    read = link_only_env.cloud.object_reads()[-1]
    assert (read.requested_key, read.read_key, read.via) == (ALICE + "ln", BOB_SECRET, "symlink")
    assert read.principal.startswith("sts:STS.")


def watermark(key: str) -> str:
    encoded = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    return f"image/resize,w_100/watermark,image_{encoded},t_90,g_se"


@pytest.mark.parametrize("mode", ["sts-v1", "sts-v4"])
def test_watermark_naming_another_users_object_is_refused(seeded: Env, mode: str) -> None:
    alice = oss2_bucket(seeded, mode, alice_only())
    own = alice.get_object(ALICE + "pic.png", process=watermark(ALICE + "own.txt"))
    assert own.read() == b"\x89PNG alice"  # the emulator does not render: the source bytes come back
    error = server_error(lambda: alice.get_object(ALICE + "pic.png", process=watermark("users/bob/pic.png")))
    assert (error.status, error.code) == (403, "AccessDenied")
    url = alice.sign_url("GET", ALICE + "pic.png", 300, params={"x-oss-process": watermark("users/bob/pic.png")})
    assert send("GET", url).code == "AccessDenied"
    nested = watermark("users/bob/pic.png?x-oss-process=image/resize,P_20")
    error = server_error(lambda: alice.get_object(ALICE + "pic.png", process=nested))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert not [r for r in seeded.cloud.object_reads() if r.read_key.startswith("users/bob/")]


def test_watermark_reads_are_logged_and_checked(seeded: Env) -> None:
    root = oss2_bucket(seeded, "root-v4")
    assert root.get_object(ALICE + "pic.png", process=watermark("users/bob/pic.png")).read() == b"\x89PNG alice"
    read = seeded.cloud.object_reads()[-1]
    assert (read.requested_key, read.read_key, read.via) == (ALICE + "pic.png", "users/bob/pic.png", "x-oss-process")
    error = server_error(lambda: root.get_object(ALICE + "pic.png", process=watermark("users/nobody.png")))
    assert (error.status, error.code) == (404, "NoSuchKey")
    for bad in ("image/watermark,image_%%%", "nonsense/x", "image/Bad Op", "image/resize,w_1|sys/saveas,o_YQ"):
        error = server_error(lambda bad=bad: root.get_object(ALICE + "pic.png", process=bad))
        assert (error.status, error.code) == (400, "InvalidArgument"), bad
    error = server_error(lambda: root.get_object(ALICE + "pic.png", process="style/thumb"))
    assert (error.status, error.code) == (400, "NoSuchStyle")


def v1_header_request(env: Env, resource: str, query: str) -> int:
    date = formatdate(usegmt=True)
    string_to_sign = f"GET\n\n\n{date}\n/{BUCKET}/{resource}"
    signature = base64.b64encode(hmac.new(ROOT_SECRET.encode(), string_to_sign.encode(), hashlib.sha1).digest())
    path, _, subresources = query.partition("?")
    target = quote(path) + ("?" + subresources if subresources else "")
    return send("GET", f"{env.endpoint}/{BUCKET}/{target}", headers={
        "Date": date, "Authorization": f"OSS {ROOT_AK}:{signature.decode()}"}).status


def test_v1_canonical_resource_uses_the_fixed_subresource_list(seeded: Env) -> None:
    key = ALICE + "own.txt"
    # unknown parameters are not signed: the signature over the bare resource verifies with or without them
    assert v1_header_request(seeded, key, key) == 200
    assert v1_header_request(seeded, key, key + "?zzz") == 200
    # a signature that covers an unknown empty parameter is refused (OSS never signs it)
    assert v1_header_request(seeded, key + "?zzz", key + "?zzz") == 403
    assert v1_header_request(seeded, key + "?aaa&b", key + "?aaa&b") == 403


def read_until_closed(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_sts_answers_a_malformed_request_line_with_400(seeded: Env) -> None:
    host, port = seeded.cloud.sts_endpoint.rsplit(":", 1)
    for line, status in ((b"GARBAGE\r\n\r\n", b" 400 "), (b"GET / HTTP/1.1 extra\r\n\r\n", b" 400 "),
                         (b"GET /\x00 HTTP/9.9\r\n\r\n", b" 400 ")):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(line)
            answer = read_until_closed(conn)
        assert answer.startswith(b"HTTP/1.1") and status in answer.split(b"\r\n", 1)[0], answer[:200]
        assert b'"Code": "InvalidRequest"' in answer
    # still serving
    assert send("GET", f"http://{seeded.cloud.sts_endpoint}/").status in (400, 403, 404)


def test_oss_answers_a_malformed_request_line_with_xml(seeded: Env) -> None:
    host, port = seeded.cloud.oss_endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1 extra\r\n\r\n")
        answer = read_until_closed(conn)
    assert b" 400 " in answer.split(b"\r\n", 1)[0]
    assert b"<Code>InvalidRequest</Code>" in answer
