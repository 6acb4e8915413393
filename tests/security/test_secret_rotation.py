"""Rotating DOWNLOAD_LINK_SECRET and WEBHOOK_SECRET breaks no link or receiver in flight (issue 10).

Links carry ``kid`` (a key id derived from their secret); the download function accepts the previous secret
until DOWNLOAD_LINK_PREVIOUS_UNTIL. Webhook deliveries carry X-Signature-Key-Id; while a previous secret is
configured, X-Signature is made with it (receivers not yet switched verify as before) and X-Signature-Next
with the new one.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from functions.download.handler import handler as download_handler
from shared import config, links
from shared.errors import ConfigError
from shared.webhook import WebhookClient, verify_signature
from tests.sign.helpers import BASE_URL, body_of, context, event, install_env

OLD = "old-link-secret-0123456789abcdef"
NEW = "new-link-secret-fedcba9876543210"
KEY = "exampledir/report.pdf"


def _iso(seconds_from_now: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _download(query: dict[str, str]) -> dict[str, Any]:
    return download_handler(event("GET", f"/download/{KEY}", query=query, api_key=None), context())


def _link(secret: str, **options: str) -> dict[str, str]:
    return _query(links.make_link(BASE_URL, KEY, secret=secret, expires_at=int(time.time()) + 600, options=options))


def test_links_name_their_key() -> None:
    query = _link(OLD)
    assert query["kid"] == links.key_id(OLD) != links.key_id(NEW) and len(query["kid"]) == 8
    assert OLD not in query["kid"]


def test_links_in_flight_survive_a_rotation_until_the_configured_time(monkeypatch: pytest.MonkeyPatch) -> None:
    issued_before = _link(OLD, filename="r.pdf")
    legacy = {k: v for k, v in _link(OLD).items() if k != "kid"}  # issued before links carried a key id
    install_env(monkeypatch, DOWNLOAD_LINK_SECRET=NEW, DOWNLOAD_LINK_PREVIOUS_SECRET=OLD,
                DOWNLOAD_LINK_PREVIOUS_UNTIL=_iso(3600))
    for query in (issued_before, legacy, _link(NEW)):
        response = _download(query)
        assert response["statusCode"] == 302, body_of(response)
    # a key id selects the secret, it does not widen anything: the old signature under the new key id fails
    assert _download({**issued_before, "kid": links.key_id(NEW)})["statusCode"] == 403
    assert body_of(_download({**issued_before, "kid": "AAAAAAAA"}))["code"] == "InvalidLink"


def test_the_previous_secret_is_refused_after_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    issued_before = _link(OLD)
    legacy = {k: v for k, v in issued_before.items() if k != "kid"}
    install_env(monkeypatch, DOWNLOAD_LINK_SECRET=NEW, DOWNLOAD_LINK_PREVIOUS_SECRET=OLD,
                DOWNLOAD_LINK_PREVIOUS_UNTIL=_iso(-1))
    for query in (issued_before, legacy):
        response = _download(query)
        assert (response["statusCode"], body_of(response)["code"]) == (403, "InvalidLink")
    assert _download(_link(NEW))["statusCode"] == 302


def test_without_a_previous_secret_old_links_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    issued_before = _link(OLD)
    install_env(monkeypatch, DOWNLOAD_LINK_SECRET=NEW)
    assert _download(issued_before)["statusCode"] == 403


@pytest.mark.parametrize(("prefix", "current"), [("DOWNLOAD_LINK", "DOWNLOAD_LINK_SECRET"),
                                                 ("WEBHOOK", "WEBHOOK_SECRET")])
def test_rotation_settings_are_checked_at_start(prefix: str, current: str) -> None:
    base = {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
            "AUTH_ANONYMOUS_SCOPE": "public/", current: NEW}
    function = "download" if prefix == "DOWNLOAD_LINK" else "on_upload"
    with pytest.raises(ConfigError, match=f"{prefix}_PREVIOUS_UNTIL") as raised:
        config.load(function, {**base, f"{prefix}_PREVIOUS_SECRET": OLD})
    assert OLD not in raised.value.message
    with pytest.raises(ConfigError, match="must differ"):
        config.load(function, {**base, f"{prefix}_PREVIOUS_SECRET": NEW, f"{prefix}_PREVIOUS_UNTIL": _iso(60)})
    with pytest.raises(ConfigError, match=f"{prefix}_PREVIOUS_UNTIL"):
        config.load(function, {**base, f"{prefix}_PREVIOUS_SECRET": OLD, f"{prefix}_PREVIOUS_UNTIL": "soon"})


# --- webhooks ------------------------------------------------------------------------------------------------


class _Pool:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def request(self, method: str, url: str, *, body: bytes, headers: dict[str, str], **_: Any) -> Any:
        self.sent.append({**headers, "_body": body.decode()})
        return type("Response", (), {"status": 200, "headers": {}})()


def _deliver(now: float, **rotation: Any) -> tuple[dict[str, str], bytes]:
    pool = _Pool()
    client = WebhookClient("https://hooks.example.test/in", NEW, clock=lambda: now, pool=pool, **rotation)
    client.deliver({"type": "object.link", "key": KEY}, "idem-1")
    headers = pool.sent[0]
    return headers, headers.pop("_body").encode()


def test_webhook_receivers_on_either_secret_verify_during_the_rotation() -> None:
    now = time.time()
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    headers, body = _deliver(now, previous_secret=OLD, previous_until=until)
    assert headers["X-Signature-Key-Id"] == links.key_id(OLD)
    assert headers["X-Signature-Next-Key-Id"] == links.key_id(NEW)
    assert verify_signature(OLD, headers, body, now=now)  # a receiver not yet switched: unchanged
    assert verify_signature(NEW, headers, body, now=now)  # a receiver already switched
    assert verify_signature([NEW, OLD], headers, body, now=now)
    assert not verify_signature("some-other-secret-0123456789", headers, body, now=now)
    # the headers a receiver from before key ids checks: X-Signature over "<timestamp>." + body, with OLD
    legacy = {"X-Signature": headers["X-Signature"], "X-Signature-Timestamp": headers["X-Signature-Timestamp"]}
    assert verify_signature(OLD, legacy, body, now=now)


def test_webhooks_after_the_rotation_are_signed_with_the_new_secret_only() -> None:
    now = time.time()
    headers, body = _deliver(now, previous_secret=OLD, previous_until=datetime.now(timezone.utc) - timedelta(1))
    assert headers["X-Signature-Key-Id"] == links.key_id(NEW) and "X-Signature-Next" not in headers
    assert verify_signature(NEW, headers, body, now=now) and not verify_signature(OLD, headers, body, now=now)
    plain, plain_body = _deliver(now)
    assert verify_signature(NEW, plain, plain_body, now=now) and "X-Signature-Next" not in plain


def test_a_key_id_cannot_make_a_wrong_secret_match() -> None:
    now = time.time()
    headers, body = _deliver(now)
    forged = {**headers, "X-Signature-Key-Id": links.key_id(OLD)}
    assert not verify_signature([OLD], forged, body, now=now)
    assert not verify_signature([OLD, NEW], {**headers, "X-Signature": "sha256=" + "0" * 64}, body, now=now)
