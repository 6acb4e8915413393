"""Proxy links taken back by their creator (shared/revocation.py): the cached list's timing, and end to end
through the local stack (the template's roles enforced by the emulator)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from local.up import caller_headers, root_bucket
from shared import revocation
from shared.errors import ServiceUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_link_ids_are_derived_from_the_signature_only():
    assert revocation.link_id("abc") == revocation.link_id("abc") != revocation.link_id("abd")
    assert len(revocation.link_id("abc")) == 22 and "abc" not in revocation.link_id("abc")


def test_the_list_is_read_once_per_refresh_period_and_a_revocation_is_seen_within_it():
    clock, reads, recorded = Clock(), [], set()

    def lister():
        reads.append(clock.now)
        return [revocation.PREFIX + identifier for identifier in recorded]

    revoked = revocation.RevokedLinks(refresh=30, stale=300, clock=clock)
    assert not revoked.contains("x", lister) and reads == [1000.0]
    recorded.add("x")  # taken back now
    clock.now += 29
    assert not revoked.contains("x", lister) and len(reads) == 1  # within the stated delay: cached
    clock.now += 1
    assert revoked.contains("x", lister) and len(reads) == 2  # at the delay: seen
    for _ in range(1000):
        revoked.contains("y", lister)
    assert len(reads) == 2  # downloads cost no OSS request


def test_an_unreadable_list_refuses_rather_than_serves():
    clock = Clock()

    def failing():
        raise OSError("store unreachable")

    revoked = revocation.RevokedLinks(refresh=30, stale=300, clock=clock)
    with pytest.raises(ServiceUnavailable):
        revoked.contains("x", failing)  # never read: no answer is safe
    assert not revoked.contains("x", lambda: [])
    clock.now += 100
    assert not revoked.contains("x", failing)  # a recent list is kept while the store is briefly unreachable
    clock.now += 300
    with pytest.raises(ServiceUnavailable):
        revoked.contains("x", failing)  # too old to trust


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def call(stack, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(stack.gateway.url + path if path.startswith("/") else path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_revoked_link_is_refused_and_others_are_not(make_stack):
    stack = make_stack(auth="apikey", instances=1)
    caller = caller_headers(stack)

    def proxy_link(key: str, expires: int) -> str:
        status, body = call(stack, "POST", "/sign", {"key": key, "proxy": True, "expires": expires}, caller)
        assert status == 200, body
        return json.loads(body)["url"]

    taken_back = proxy_link("exampledir/exampleobject.txt", 600)
    kept = proxy_link("exampledir/exampleobject.txt", 900)  # same key, another link
    status, body = call(stack, "POST", "/sign", {"revoke": taken_back}, caller)
    answer = json.loads(body)
    assert status == 200 and answer["revoked"] is True and answer["effective_within_seconds"] == 30
    record = json.loads(root_bucket(stack).get_object(revocation.PREFIX + answer["link_id"]).read())
    assert record["key"] == "exampledir/exampleobject.txt" and record["revoked_by"] == "demo"
    assert "sig" not in json.dumps(record)  # the record holds no signature
    status, body = call(stack, "GET", taken_back)
    assert status == 403 and json.loads(body)["code"] == "LinkRevoked"
    assert call(stack, "GET", kept)[0] == 302
    assert call(stack, "GET", "/download/exampledir/exampleobject.txt", headers=caller)[0] == 302  # callers unaffected


def test_only_a_valid_link_in_the_callers_scope_can_be_taken_back(make_stack):
    stack = make_stack(auth="apikey", instances=1)
    caller = caller_headers(stack)
    status, body = call(stack, "POST", "/sign", {"key": "exampledir/a b+c.txt", "proxy": True}, caller)
    assert status == 200, body
    link = json.loads(body)["url"]
    forged = link.replace("sig=", "sig=A")
    assert json.loads(call(stack, "POST", "/sign", {"revoke": forged}, caller)[1])["code"] == "InvalidLink"
    assert call(stack, "POST", "/sign", {"revoke": link, "key": "x"}, caller)[0] == 400
    assert call(stack, "POST", "/sign", {"revoke": "https://example.com/elsewhere"}, caller)[0] == 400
    assert call(stack, "POST", "/sign", {"revoke": link})[0] == 401  # not signed in
    assert list(root_bucket(stack).list_objects_v2(prefix=revocation.PREFIX).object_list) == []
    assert call(stack, "GET", link)[0] == 302


def test_a_deployment_without_revocation_refuses_to_take_back(make_stack):
    off = {"DOWNLOAD_LINK_REVOCATION": "false"}
    stack = make_stack(auth="apikey", instances=1, env={"sign": off, "download": off})
    caller = caller_headers(stack)
    status, body = call(stack, "POST", "/sign", {"key": "exampledir/exampleobject.txt", "proxy": True}, caller)
    link = json.loads(body)["url"]
    status, body = call(stack, "POST", "/sign", {"revoke": link}, caller)
    assert status == 400 and "cannot be taken back" in json.loads(body)["message"]
    assert call(stack, "GET", link)[0] == 302
