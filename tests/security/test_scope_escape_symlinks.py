"""Issue 10's two attacks, end to end through the gateway and judged by the emulator: a symlink planted with
vended write credentials, and a watermark naming another user's picture. The product refuses both, and the
narrowed signing session is a second line: the emulator refuses what it signs outside the scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from local.up import Stack, start_stack
from shared import links
from tests.security.scope_escape import SCOPE, Attacker, Judge, b64, request

BOB = "users/bob/secret.txt"
OWN = f"{SCOPE}own.txt"
OWN_BYTES = b"alice's own bytes"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(data_dir=tmp_path_factory.mktemp("symlinks"), auth="jwt", port=0, oss_port=0, sts_port=0,
                        timers=False, echo_logs=False, parameters={"UseSignerRole": "true"})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def judge(stack: Stack) -> Judge:
    judge = Judge(stack)
    judge.seed([BOB, "users/bob/photo.png", "users/alicex/secret.txt"], {OWN: OWN_BYTES})
    return judge


@pytest.fixture(scope="module")
def alice(stack: Stack, judge: Judge) -> Attacker:
    attacker = Attacker(stack)
    bucket = attacker.sts_bucket(["read", "write"])  # vended write credentials, as any uploader gets them
    bucket.put_symlink(BOB, f"{SCOPE}ln")
    bucket.put_symlink("users/alicex/secret.txt", f"{SCOPE}ln-prefix")
    bucket.put_symlink("users/bob/not-yet.txt", f"{SCOPE}ln-dangling")
    bucket.put_symlink(f"{SCOPE}ln", f"{SCOPE}ln-chain")
    bucket.put_symlink(OWN, f"{SCOPE}ln-ok")
    return attacker


def _path(key: str) -> str:
    return "/download/" + quote(key, safe="/")


@pytest.mark.parametrize("link", ["ln", "ln-prefix", "ln-dangling", "ln-chain"])
def test_sign_and_download_refuse_a_link_leaving_the_scope(alice: Attacker, judge: Judge, link: str) -> None:
    key = SCOPE + link
    for version in ("v4", "v1"):
        answer = alice.call("GET", f"/sign?key={quote(key)}&version={version}")
        judge.judge("symlink", f"sign {link} {version}", answer)
        assert answer.status == 403 and answer.json()["code"] == "SymlinkOutOfScope", answer
    proxied = alice.call("GET", f"/sign?key={quote(key)}&proxy=true")
    judge.judge("symlink", f"proxy {link}", proxied)
    assert proxied.json()["code"] == "SymlinkOutOfScope"
    batch = alice.call("POST", "/sign", body={"keys": [key, OWN], "method": "HEAD"})
    judge.judge("symlink", f"batch {link}", batch)
    results = batch.json()["results"]
    assert results[0]["error"]["code"] == "SymlinkOutOfScope" and "url" in results[1]
    for method in ("GET", "HEAD"):
        download = alice.call(method, _path(key))
        judge.judge("symlink", f"download {method} {link}", download)
        assert download.status == 403, download
    assert not judge.escapes, judge.escapes


def test_an_in_scope_link_still_works(alice: Attacker, judge: Judge) -> None:
    answer = alice.call("GET", f"/sign?key={quote(SCOPE + 'ln-ok')}")
    assert answer.status == 200
    assert request(answer.json()["url"]).body == OWN_BYTES
    redirect = alice.call("GET", _path(SCOPE + "ln-ok"))
    assert redirect.status == 302 and request(redirect.headers["Location"]).body == OWN_BYTES


def test_a_proxy_link_to_an_object_later_replaced_by_a_link_is_refused_when_used(stack: Stack, alice: Attacker,
                                                                                  judge: Judge) -> None:
    key = f"{SCOPE}swap.txt"
    bucket = alice.sts_bucket(["read", "write"])
    bucket.put_object(key, b"harmless")
    link = alice.call("GET", f"/sign?key={quote(key)}&proxy=true").json()["url"]
    bucket.put_symlink(BOB, key)  # after the link was issued
    used = request(link)
    judge.judge("symlink", "proxy link, then swapped", used)
    assert used.status == 403 and used.json()["code"] == "SymlinkOutOfScope"
    assert not judge.escapes, judge.escapes


def test_a_url_signed_before_the_swap_is_refused_by_the_emulator(alice: Attacker, judge: Judge) -> None:
    """The residual the check cannot see (a link planted after signing): the narrowed session signed the URL,
    and the emulator evaluates its policy against the link's target."""
    key = f"{SCOPE}later.txt"
    bucket = alice.sts_bucket(["read", "write"])
    bucket.put_object(key, b"harmless")
    url = alice.call("GET", f"/sign?key={quote(key)}").json()["url"]
    bucket.put_symlink(BOB, key)
    fetched = request(url)
    judge.judge("symlink", "url, then swapped", fetched)
    assert fetched.status == 403 and b"AccessDenied" in fetched.body
    assert not judge.escapes, judge.escapes


def test_the_watermark_attack_is_refused_and_the_emulator_would_refuse_it_too(stack: Stack, alice: Attacker,
                                                                               judge: Judge) -> None:
    bucket = alice.sts_bucket(["read", "write"])
    bucket.put_object(f"{SCOPE}pic.png", b"\x89PNG not really")
    process = f"image/watermark,image_{b64('users/bob/photo.png')}"
    answer = alice.call("GET", f"/sign?key={quote(SCOPE + 'pic.png')}&process={quote(process)}")
    judge.judge("process", "watermark", answer)
    assert answer.status == 400 and answer.json()["code"] == "ProcessNotAllowed"
    # Bypassing our check: the same process signed directly with the narrowed session the product uses.
    allowed = alice.call("GET", f"/sign?key={quote(SCOPE + 'pic.png')}&process=image/resize,w_10").json()["url"]
    from tests.e2e.test_signer_role import _direct_signer, _session_of

    session = _session_of(stack, allowed)
    from shared.signing import PresignOptions

    forged = _direct_signer(stack, session).presign(f"{SCOPE}pic.png", expires=600,
                                                    options=PresignOptions(process=process)).url
    fetched = request(forged)
    assert fetched.status == 403 and b"AccessDenied" in fetched.body, fetched
    judge.judge("process", "watermark signed with the narrowed session", fetched)
    assert not judge.escapes, judge.escapes


@pytest.mark.parametrize("target_policy_checked", [True, False])
def test_stream_mode_never_passes_on_a_links_foreign_bytes(make_stack: Any, target_policy_checked: bool) -> None:
    """DOWNLOAD_MODE=stream reads the bytes itself. Also under the weakest reading of OSS's documentation
    (only the link's permissions checked, not the target's): the emulator serves Bob's bytes to the function,
    which sees x-oss-object-type: Symlink and refuses before passing any on; no signer role here either."""
    stack = make_stack(auth="jwt", env={"download": {"DOWNLOAD_MODE": "stream"}})
    stack.cloud.api.check_symlink_target_policy = target_policy_checked
    judge = Judge(stack)
    judge.seed([BOB], {OWN: OWN_BYTES})
    attacker = Attacker(stack)
    bucket = attacker.sts_bucket(["read", "write"])
    bucket.put_symlink(BOB, f"{SCOPE}ln")
    bucket.put_symlink(OWN, f"{SCOPE}ln-ok")
    for method in ("GET", "HEAD"):
        for headers in ({}, {"Range": "bytes=0-5"}, {"If-None-Match": '"x"'}):
            answer = attacker.call(method, _path(f"{SCOPE}ln"), headers=headers)
            assert answer.status == 403 and (method == "HEAD" or answer.json()["code"] == "SymlinkOutOfScope")
            if not target_policy_checked:
                # The emulator did hand Bob's object to the function (the weak reading), which kept it:
                # the judge below still checks the answer and anything it points to.
                reads = stack.cloud.object_reads()
                assert any(read.read_key == BOB and read.via == "symlink" for read in reads), reads
                stack.cloud.api.reads.clear()
            judge.judge("symlink", f"stream {method} {headers}", answer)
    served = attacker.call("GET", _path(f"{SCOPE}ln-ok"))
    assert served.status == 200 and served.body == OWN_BYTES
    assert not judge.escapes, judge.escapes


def test_link_secret_is_what_makes_proxy_links(stack: Stack) -> None:
    """Sanity for the suite: a proxy link made with the deployment's secret for an in-scope key works, so a
    refused tampered link is refused for its tampering."""
    link = links.make_link(stack.gateway.url, OWN, secret=stack.secrets.link_secret, expires_at=2**31 - 1,
                           options={})
    assert request(link).status == 302


def test_no_escape_in_this_module(judge: Judge) -> None:
    assert judge.counts["escaped"] == 0 and not judge.escapes
    print(judge.summary())


