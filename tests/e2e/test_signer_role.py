"""UseSignerRole: URLs are signed with a dedicated 12-hour role session that the sign function assumes
through the local STS (trust and sts:AssumeRole checked by the emulator), not with its own credentials,
narrowed by a session policy to the caller's scope: the emulator refuses anything else signed with it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from local.up import caller_headers, root_bucket


def _sign(stack, query: str) -> dict:
    request = urllib.request.Request(f"{stack.gateway.url}/sign?{query}", headers=caller_headers(stack))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _session_of(stack, url: str):
    access_key = parse_qs(urlsplit(url).query)["x-oss-credential"][0].split("/")[0]
    return stack.cloud.token_store.by_access_key(access_key)


def test_urls_are_signed_by_the_signer_role_and_work(make_stack):
    stack = make_stack(parameters={"UseSignerRole": "true"})
    signer_arn = stack.template.roles["SignerRole"].arn
    answer = _sign(stack, "key=exampledir/exampleobject.txt&expires=30000")
    session = _session_of(stack, answer["url"])
    assert session.role_arn == signer_arn
    assert (session.expiration - session.issued_at).total_seconds() == 43200  # SIGNER_SESSION_SECONDS
    assert answer["expires_in"] == 30000 and answer["clamped"] is False
    with urllib.request.urlopen(answer["url"], timeout=30) as response:
        assert response.read() == b"Hello from exampledir/exampleobject.txt.\n"
    # the session is reused, not assumed again for every call
    again = _sign(stack, "key=exampledir/a%20b%2Bc.txt&expires=600")
    assert _session_of(stack, again["url"]).access_key_id == session.access_key_id


def test_without_the_signer_role_the_function_role_signs(make_stack):
    stack = make_stack(parameters={"UseSignerRole": "false"})
    answer = _sign(stack, "key=exampledir/exampleobject.txt&expires=600")
    assert _session_of(stack, answer["url"]).role_arn == stack.template.roles["SignFunctionRole"].arn


def test_as_in_the_cloud_function_credentials_of_unknown_age_cap_urls_and_say_so(make_stack):
    """FC's python3.10 context has no credential expiration: without a signer role, a URL asked for two
    hours gets FUNCTION_CREDENTIALS_LIFETIME (3600 s), reported as clamped by the credentials."""
    stack = make_stack(pass_credentials_expiration=False, parameters={"UseSignerRole": "false"})
    answer = _sign(stack, "key=exampledir/exampleobject.txt&expires=7200")
    assert answer["clamped"] is True and answer["clamp_reason"] == "credentials"
    # 3600 s from when the function read its credentials, which can be a few seconds after the request's
    # signing time on a loaded machine: never more than that, and never the 7200 asked for.
    assert 3500 <= answer["expires_in"] <= 3610
    with_signer = make_stack(pass_credentials_expiration=False, parameters={"UseSignerRole": "true"})
    answer = _sign(with_signer, "key=exampledir/exampleobject.txt&expires=7200")
    assert answer["clamped"] is False and answer["expires_in"] == 7200


# --- scope-narrowed sessions: the emulator, not our key check, refuses what is outside the scope -----------------


def _fetch(url: str, *, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _direct_signer(stack, session, version: str = "v4"):
    """A signer holding the session our sign function used, pointed at the emulator: it signs anything."""
    from shared.signing import Credentials, Endpoint, Signer

    credentials = Credentials(session.access_key_id, session.access_key_secret, session.security_token,
                              session.expiration)
    return Signer(credentials, Endpoint(stack.cloud.oss_endpoint, "http", "path"), "demo-bucket",
                  region="cn-hangzhou", version=version)


def test_urls_are_signed_by_a_session_narrowed_to_the_callers_scope(make_stack):
    stack = make_stack(parameters={"UseSignerRole": "true"})
    root_bucket(stack).put_object("otherdir/secret.txt", b"not for exampledir callers")
    answer = _sign(stack, "key=exampledir/exampleobject.txt&expires=600")
    session = _session_of(stack, answer["url"])
    assert session.role_arn == stack.template.roles["SignerRole"].arn
    statements = session.session_policy["Statement"]
    assert [s["Resource"] for s in statements if "oss:GetObject" in s["Action"]] == [
        ["acs:oss:*:*:demo-bucket/exampledir/*"]]
    assert all(s["Condition"] == {"StringLike": {"oss:Prefix": ["exampledir/*"]}}
               for s in statements if "oss:ListObjects" in s["Action"])
    assert _fetch(answer["url"]) == (200, b"Hello from exampledir/exampleobject.txt.\n")
    for version in ("v4", "v1"):
        signer = _direct_signer(stack, session, version)
        inside = signer.presign("exampledir/exampleobject.txt", expires=600).url
        assert _fetch(inside)[0] == 200, version  # the control: the session itself works
        for key in ("otherdir/secret.txt", "exampledir-other/x", "exampleobject.txt"):
            status, body = _fetch(signer.presign(key, expires=600).url)
            assert status == 403 and b"<Code>AccessDenied</Code>" in body, (version, key, status, body[:200])
        put = signer.presign("exampledir/new.txt", expires=600, method="PUT").url
        assert _fetch(put, method="PUT", data=b"x")[0] == 403  # a GET session cannot write either


def test_one_sts_call_per_scope_however_many_urls(make_stack):
    stack = make_stack(parameters={"UseSignerRole": "true"})
    with stack.gateway.captured_logs() as records:
        urls = [_sign(stack, f"key=exampledir/k{i}.txt")["url"] for i in range(5)]
    assert len({_session_of(stack, url).access_key_id for url in urls}) == 1
    assumed = [r for r in records if r.get("event") == "signer.scoped_session"]
    assert [r["scope"] for r in assumed] == ["exampledir/"]
