"""UseSignerRole: URLs are signed with a dedicated 12-hour role session that the sign function assumes
through the local STS (trust and sts:AssumeRole checked by the emulator), not with its own credentials."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import parse_qs, urlsplit

from local.up import caller_headers


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
    stack = make_stack()
    answer = _sign(stack, "key=exampledir/exampleobject.txt&expires=600")
    assert _session_of(stack, answer["url"]).role_arn == stack.template.roles["SignFunctionRole"].arn


def test_as_in_the_cloud_function_credentials_of_unknown_age_cap_urls_and_say_so(make_stack):
    """FC's python3.10 context has no credential expiration: without a signer role, a URL asked for two
    hours gets FUNCTION_CREDENTIALS_LIFETIME (3600 s), reported as clamped by the credentials."""
    stack = make_stack(pass_credentials_expiration=False)
    answer = _sign(stack, "key=exampledir/exampleobject.txt&expires=7200")
    assert answer["clamped"] is True and answer["clamp_reason"] == "credentials"
    assert 3500 <= answer["expires_in"] <= 3600
    with_signer = make_stack(pass_credentials_expiration=False, parameters={"UseSignerRole": "true"})
    answer = _sign(with_signer, "key=exampledir/exampleobject.txt&expires=7200")
    assert answer["clamped"] is False and answer["expires_in"] == 7200
