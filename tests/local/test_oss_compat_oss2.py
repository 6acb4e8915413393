"""oss2 2.19.1 against the emulator: V1 and V4, root keys and STS credentials."""

from __future__ import annotations

import hashlib
import os
import urllib.request

import oss2
import pytest

from tests.local.support import BUCKET, OBJECT_READ_WRITE_ROLE, REGION, ROOT_AK, ROOT_SECRET, Env

AUTH_MODES = ["root-v1", "root-v4", "sts-v1", "sts-v4"]


def make_bucket(env: Env, mode: str, bucket: str = BUCKET) -> oss2.Bucket:
    if mode.startswith("root"):
        auth = oss2.Auth(ROOT_AK, ROOT_SECRET) if mode.endswith("v1") else oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    else:
        session = env.session()
        version = oss2.AUTH_VERSION_1 if mode.endswith("v1") else oss2.AUTH_VERSION_4
        auth = oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token,
                            auth_version=version)
    return oss2.Bucket(auth, env.endpoint, bucket, region=REGION)


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_object_lifecycle(shared_env: Env, mode: str) -> None:
    bucket = make_bucket(shared_env, mode)
    base = f"oss2/{mode}/"
    key = base + "dir/报告 a+b~c*.txt"
    body = os.urandom(3000)

    result = bucket.put_object(key, body, headers={
        "Content-Type": "text/plain", "x-oss-meta-owner": "alice",
        "Content-Disposition": 'attachment; filename="r.txt"', "Cache-Control": "no-cache",
    })
    assert result.status == 200
    assert result.etag == hashlib.md5(body).hexdigest().upper()

    assert bucket.get_object(key).read() == body
    assert bucket.get_object(key, byte_range=(10, 19)).read() == body[10:20]
    assert bucket.get_object(key, byte_range=(2990, None)).read() == body[2990:]

    head = bucket.head_object(key)
    assert head.content_length == 3000
    assert head.content_type == "text/plain"
    assert head.headers["x-oss-meta-owner"] == "alice"
    assert head.headers["Content-Disposition"] == 'attachment; filename="r.txt"'
    assert head.headers["Cache-Control"] == "no-cache"
    assert bucket.get_object_meta(key).etag == result.etag
    assert bucket.object_exists(key)
    assert not bucket.object_exists(base + "missing")

    overridden = bucket.get_object(key, params={"response-content-type": "application/pdf",
                                                "response-cache-control": "max-age=60"})
    assert overridden.headers["Content-Type"] == "application/pdf"
    assert overridden.headers["Cache-Control"] == "max-age=60"

    # copy (metadata copied) and copy with REPLACE
    copied = bucket.copy_object(BUCKET, key, base + "copy.txt")
    assert copied.etag == result.etag
    assert bucket.head_object(base + "copy.txt").headers["x-oss-meta-owner"] == "alice"
    bucket.copy_object(BUCKET, key, base + "copy2.txt", headers={
        "x-oss-metadata-directive": "REPLACE", "Content-Type": "image/png", "x-oss-meta-owner": "bob"})
    replaced = bucket.head_object(base + "copy2.txt")
    assert (replaced.content_type, replaced.headers["x-oss-meta-owner"]) == ("image/png", "bob")

    # presign then fetch with plain urllib
    url = bucket.sign_url("GET", key, 300, slash_safe=True)
    with urllib.request.urlopen(url) as response:
        assert response.read() == body
    signed_type = {"Content-Type": "application/octet-stream"}  # urllib always sends one with a body
    put_url = bucket.sign_url("PUT", base + "presigned-put.bin", 300, headers=signed_type)
    request = urllib.request.Request(put_url, data=b"via url", method="PUT", headers=signed_type)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert bucket.get_object(base + "presigned-put.bin").read() == b"via url"

    # delete, batch delete
    bucket.delete_object(base + "copy.txt")
    assert not bucket.object_exists(base + "copy.txt")
    deleted = bucket.batch_delete_objects([base + "copy2.txt", base + "presigned-put.bin", base + "never-was"])
    assert sorted(deleted.deleted_keys) == sorted([base + "copy2.txt", base + "presigned-put.bin", base + "never-was"])
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(base + "copy2.txt")


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_listing(shared_env: Env, mode: str) -> None:
    bucket = make_bucket(shared_env, mode)
    base = f"list-oss2/{mode}/"
    keys = [f"{base}a/{i:02d}" for i in range(5)] + [f"{base}b/x", f"{base}c.txt", f"{base}d e+f.txt"]
    for key in keys:
        bucket.put_object(key, b"1")

    v1 = bucket.list_objects(prefix=base, delimiter="/", max_keys=100)
    assert [o.key for o in v1.object_list] == [f"{base}c.txt", f"{base}d e+f.txt"]
    assert v1.prefix_list == [f"{base}a/", f"{base}b/"]

    v2 = bucket.list_objects_v2(prefix=base, delimiter="/")
    assert [o.key for o in v2.object_list] == [f"{base}c.txt", f"{base}d e+f.txt"]
    assert v2.prefix_list == [f"{base}a/", f"{base}b/"]

    # paging (oss2 iterators follow NextMarker / NextContinuationToken)
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix=base, max_keys=3)] == sorted(keys)
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=base, max_keys=2)] == sorted(keys)
    mixed = [o.key for o in oss2.ObjectIterator(bucket, prefix=base, delimiter="/", max_keys=1)]
    assert mixed == [f"{base}a/", f"{base}b/", f"{base}c.txt", f"{base}d e+f.txt"]
    page = bucket.list_objects_v2(prefix=base, max_keys=3, start_after=f"{base}a/02", fetch_owner=True)
    assert [o.key for o in page.object_list] == [f"{base}a/03", f"{base}a/04", f"{base}b/x"]
    assert page.is_truncated
    assert page.object_list[0].owner is not None


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_multipart(shared_env: Env, mode: str) -> None:
    bucket = make_bucket(shared_env, mode)
    key = f"mp-oss2/{mode}/big.bin"
    parts_data = [os.urandom(100 * 1024), os.urandom(100 * 1024), os.urandom(1234)]
    upload_id = bucket.init_multipart_upload(key, headers={"Content-Type": "video/mp4"}).upload_id
    parts = []
    for number, data in enumerate(parts_data, start=1):
        result = bucket.upload_part(key, upload_id, number, data)
        parts.append(oss2.models.PartInfo(number, result.etag))
    listed = bucket.list_parts(key, upload_id)
    assert [p.part_number for p in listed.parts] == [1, 2, 3]
    assert [p.size for p in listed.parts] == [len(d) for d in parts_data]
    complete = bucket.complete_multipart_upload(key, upload_id, parts)
    md5s = b"".join(hashlib.md5(d).digest() for d in parts_data)
    assert complete.etag == hashlib.md5(md5s).hexdigest().upper() + "-3"
    whole = b"".join(parts_data)
    got = bucket.get_object(key)
    assert got.read() == whole
    assert got.headers["x-oss-object-type"] == "Multipart"
    assert got.content_type == "video/mp4"

    aborted = bucket.init_multipart_upload(key + ".aborted").upload_id
    bucket.upload_part(key + ".aborted", aborted, 1, b"x")
    bucket.abort_multipart_upload(key + ".aborted", aborted)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key + ".aborted", aborted)


def test_resumable_upload_and_download(shared_env: Env, tmp_path) -> None:
    bucket = make_bucket(shared_env, "root-v4")
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(450 * 1024))
    oss2.resumable_upload(bucket, "resumable/file.bin", str(source), multipart_threshold=200 * 1024,
                          part_size=100 * 1024, num_threads=2, store=oss2.ResumableStore(root=str(tmp_path)))
    target = tmp_path / "dst.bin"
    oss2.resumable_download(bucket, "resumable/file.bin", str(target), multiget_threshold=100 * 1024,
                            part_size=100 * 1024, num_threads=2,
                            store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert target.read_bytes() == source.read_bytes()


def test_service_and_bucket_operations(shared_env: Env) -> None:
    auth = oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    service = oss2.Service(auth, shared_env.endpoint, region=REGION)
    names = [b.name for b in service.list_buckets().buckets]
    assert BUCKET in names and "other" in names
    created = oss2.Bucket(auth, shared_env.endpoint, "made-by-oss2", region=REGION)
    created.create_bucket()
    info = created.get_bucket_info()
    assert info.name == "made-by-oss2"
    assert info.location == f"oss-{REGION}"
    created.put_bucket_cors(oss2.models.BucketCors([oss2.models.CorsRule(
        allowed_origins=["*"], allowed_methods=["GET"], allowed_headers=["*"], max_age_seconds=30)]))
    rules = created.get_bucket_cors().rules
    assert rules[0].allowed_origins == ["*"] and rules[0].max_age_seconds == 30
    created.delete_bucket_cors()
    with pytest.raises(oss2.exceptions.NoSuchCors):
        created.get_bucket_cors()
    created.put_object("x", b"1")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        created.delete_bucket()
    created.delete_object("x")
    created.delete_bucket()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        created.get_bucket_info()


def test_credentials_from_the_sts_server(shared_env: Env) -> None:
    """AssumeRole over HTTP (official STS SDK) yields credentials the OSS emulator accepts and scopes."""
    from alibabacloud_sts20150401 import models
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    client = Client(Config(access_key_id=ROOT_AK, access_key_secret=ROOT_SECRET,
                           endpoint=shared_env.cloud.sts_endpoint, protocol="http", region_id=REGION))
    policy = ('{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject","oss:PutObject"],'
              f'"Resource":["acs:oss:*:*:{BUCKET}/sts-server/*"]}}]}}')
    response = client.assume_role(models.AssumeRoleRequest(
        role_arn=OBJECT_READ_WRITE_ROLE.arn, role_session_name="over-http", duration_seconds=900, policy=policy))
    credentials = response.body.credentials
    auth = oss2.StsAuth(credentials.access_key_id, credentials.access_key_secret, credentials.security_token,
                        auth_version=oss2.AUTH_VERSION_4)
    bucket = oss2.Bucket(auth, shared_env.endpoint, BUCKET, region=REGION)
    bucket.put_object("sts-server/ok.txt", b"ok")
    assert bucket.get_object("sts-server/ok.txt").read() == b"ok"
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("elsewhere.txt", b"no")


@pytest.mark.parametrize("mode", ["root-v1", "sts-v4"])
def test_upload_part_copy(shared_env: Env, mode: str) -> None:
    bucket = make_bucket(shared_env, mode)
    source = os.urandom(300 * 1024)
    bucket.put_object(f"partcopy/{mode}/source", source)
    key = f"partcopy/{mode}/target"
    upload_id = bucket.init_multipart_upload(key).upload_id
    first = bucket.upload_part_copy(BUCKET, f"partcopy/{mode}/source", (0, 200 * 1024 - 1), key, upload_id, 1)
    second = bucket.upload_part_copy(BUCKET, f"partcopy/{mode}/source", (200 * 1024, None), key, upload_id, 2)
    assert first.etag == hashlib.md5(source[: 200 * 1024]).hexdigest().upper()
    bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, first.etag),
                                                      oss2.models.PartInfo(2, second.etag)])
    assert bucket.get_object(key).read() == source
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.upload_part_copy(BUCKET, "partcopy/missing", (0, 1), key + "2",
                                bucket.init_multipart_upload(key + "2").upload_id, 1)


def test_copier_of_alibabacloud_oss_v2_uses_part_copy(shared_env: Env) -> None:
    import alibabacloud_oss_v2 as oss

    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(ROOT_AK, ROOT_SECRET)
    config.region, config.endpoint, config.use_path_style = REGION, shared_env.endpoint, True
    client = oss.Client(config)
    source = os.urandom(350 * 1024)
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="copier/source", body=source))
    copier = client.copier(part_size=100 * 1024, multipart_copy_threshold=200 * 1024, disable_shallow_copy=True)
    copier.copy(oss.CopyObjectRequest(bucket=BUCKET, key="copier/target", source_bucket=BUCKET,
                                      source_key="copier/source"))
    copied = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="copier/target"))
    assert copied.body.read() == source
    assert copied.headers["x-oss-object-type"] == "Multipart"
