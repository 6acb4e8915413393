"""Adversarial review: no secret reaches a log line or an error answer, on any path of the HTTP functions.

Secrets: the function's AccessKey secret and security token, the caller's API key or JWT, URL signatures,
the proxy-link secret. Upstreams are unreachable loopback ports, so every failure path runs too.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from functions.download.handler import handler as download_handler
from functions.sign.handler import handler as sign_handler
from functions.token.handler import handler as token_handler
from shared import logging as log
from shared import sts
from tests.sign.helpers import API_KEY, LINK_SECRET, ROOT_AK, context, event, install_env

SECRET = "review-function-secret-0123456789abcdef"
TOKEN = "CAISreview-function-security-token-0123456789"
CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    monkeypatch.setattr(sts, "sleep", lambda seconds: None)
    sts.reset()
    yield stream
    log.configure("warning")
    sts.reset()


def ctx() -> Any:
    return context(access_key_id=ROOT_AK, secret=SECRET, token=TOKEN)


def _assert_clean(text: str, *extra: str) -> None:
    assert text, "nothing was captured"
    for secret in (SECRET, TOKEN, API_KEY, LINK_SECRET, *extra):
        assert secret not in text, secret[:12]
    signatures = re.findall(r"(?:x-oss-signature|Signature)=([0-9A-Za-z%]{16,})", text)
    assert not signatures, signatures[:1]


def _answers(responses: list[dict[str, Any]]) -> str:
    return json.dumps([{"headers": r["headers"], "body": r["body"]} for r in responses])


def test_sign_paths(monkeypatch: pytest.MonkeyPatch, logs: io.StringIO) -> None:
    install_env(monkeypatch, SIGN_CHECK_EXISTS="true", OSS_ENDPOINT=CLOSED, LOG_LEVEL="debug")
    responses = [
        sign_handler(event("GET", "/sign", query={"key": "exampledir/a"}), ctx()),  # HEAD fails: 502
        sign_handler(event("POST", "/sign", body={"keys": ["exampledir/a", "otherdir/b"]}), ctx()),
        sign_handler(event("GET", "/sign", query={"key": "exampledir/a"}, api_key="wrong-" + API_KEY), ctx()),
        sign_handler(event("GET", "/sign", query={"key": "exampledir/a", "expires": "x"}), ctx()),
    ]
    assert [r["statusCode"] for r in responses] == [502, 200, 401, 400], _answers(responses)
    _assert_clean(logs.getvalue())
    _assert_clean(_answers(responses))
    install_env(monkeypatch, LOG_LEVEL="debug")  # signing works: the URL is an answer, never a log line
    signed = sign_handler(event("GET", "/sign", query={"key": "exampledir/a"}), ctx())
    url = json.loads(signed["body"])["url"]
    assert signed["statusCode"] == 200 and "x-oss-signature=" in url
    signature = url.rsplit("=", 1)[1]
    assert signature not in logs.getvalue() and TOKEN not in logs.getvalue()


def test_download_paths(monkeypatch: pytest.MonkeyPatch, logs: io.StringIO) -> None:
    install_env(monkeypatch, DOWNLOAD_MODE="stream", OSS_ENDPOINT=CLOSED, LOG_LEVEL="debug")
    responses = [
        download_handler(event("GET", "/download/exampledir/a"), ctx()),  # upstream unreachable
        download_handler(event("GET", "/download/exampledir/a", query={"exp": "1", "sig": "x"}), ctx()),
        download_handler(event("GET", "/download/otherdir/a"), ctx()),
    ]
    assert [r["statusCode"] for r in responses] == [502, 403, 403], _answers(responses)
    assert logs.getvalue().count('"http.access"') == 3
    _assert_clean(logs.getvalue())
    _assert_clean(_answers(responses))
    install_env(monkeypatch, LOG_LEVEL="debug")
    redirect = download_handler(event("GET", "/download/exampledir/a"), ctx())
    signature = redirect["headers"]["Location"].rsplit("=", 1)[1]
    assert redirect["statusCode"] == 302 and signature not in logs.getvalue()


def test_token_paths(monkeypatch: pytest.MonkeyPatch, logs: io.StringIO) -> None:
    install_env(monkeypatch, STS_ROLE_ARN="acs:ram::1234567890123456:role/vended", STS_ENDPOINT=CLOSED,
                STS_TIMEOUT="1", STS_MAX_RETRIES="0", LOG_LEVEL="debug")
    responses = [
        token_handler(event("POST", "/sts", api_key=API_KEY), ctx()),  # STS unreachable: 503
        token_handler(event("POST", "/sts", api_key="nope"), ctx()),
        token_handler(event("POST", "/sts", body={"prefix": "../x"}), ctx()),
    ]
    assert [r["statusCode"] for r in responses] == [503, 401, 400], _answers(responses)
    assert '"sts.failed"' in logs.getvalue() and '"http.access"' in logs.getvalue()
    _assert_clean(logs.getvalue())
    _assert_clean(_answers(responses))
