"""Issue 10's input defects: non-ASCII digits and lone surrogates are a 4xx JSON error, never a 500.

Each case here answered 500 (or was silently accepted) before the fix: ``"²".isdigit()`` is True and
``int("²")`` raises; ``int("٣")`` is 3; a lone surrogate (JSON ``\\ud800``) cannot be UTF-8 encoded, so the
first HMAC or header that encodes it raised UnicodeEncodeError.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.download.handler import handler as download_handler
from functions.sign.handler import handler as sign_handler
from shared import config, links
from shared.errors import ConfigError
from shared.numbers import ascii_int_or_none, parse_ascii_int
from shared.webhook import sign_payload, verify_signature
from tests.sign.helpers import BASE_URL, LINK_SECRET, body_of, context, event, install_env

UNICODE_DIGITS = ["²", "٣٠٠", "３００", "৯০০", "\u0969\u0966\u0966", "1_000", "+300", "3e2"]


def _assert_json_error(response: dict[str, Any], status: int) -> dict[str, Any]:
    assert response["statusCode"] == status, response
    body = body_of(response)
    assert set(body) == {"code", "message", "requestId"}, body
    return body


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch)


@pytest.mark.parametrize("text", [*UNICODE_DIGITS, "", " ", "-1", "1 2", "1\n", "0x10", "１"])
def test_parse_ascii_int_refuses_everything_but_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ascii_int(text)
    assert ascii_int_or_none(text) is None


def test_parse_ascii_int_bounds_and_length() -> None:
    assert parse_ascii_int(" 0042 ", low=1, high=100) == 42
    with pytest.raises(ValueError):
        parse_ascii_int("101", high=100)
    with pytest.raises(ValueError):
        parse_ascii_int("1" * 19)  # bounded before int() runs on it


@pytest.mark.parametrize("name", ["expires", "traffic_limit", "subnet_mask"])
@pytest.mark.parametrize("value", UNICODE_DIGITS)
def test_sign_numbers_are_ascii_only(name: str, value: str) -> None:
    query = {"key": "exampledir/a.txt", name: value}
    if name == "subnet_mask":
        query["source_ip"] = "203.0.113.7"
    body = _assert_json_error(sign_handler(event("GET", "/sign", query=query), context()), 400)
    assert body["code"] == "InvalidParameter" and name in body["message"]


@pytest.mark.parametrize("value", UNICODE_DIGITS)
def test_proxy_link_expiry_is_ascii_only(value: str) -> None:
    query = {"exp": value, "sig": "x" * 43}
    body = _assert_json_error(download_handler(event("GET", "/download/exampledir/a.txt", query=query,
                                                     api_key=None), context()), 403)
    assert body["code"] == "InvalidLink"


@pytest.mark.parametrize("value", ["３６００", "٣٦٠٠", "3_600", "+3600"])
def test_numeric_variables_are_ascii_only(value: str) -> None:
    base = {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
            "AUTH_ANONYMOUS_SCOPE": "public/"}
    with pytest.raises(ConfigError, match="URL_DEFAULT_EXPIRES"):
        config.load("sign", {**base, "URL_DEFAULT_EXPIRES": value})


def test_webhook_timestamps_are_ascii_only() -> None:
    body = b"{}"
    good = {"X-Signature-Timestamp": "1700000000", "X-Signature": sign_payload("s" * 16, 1700000000, body)}
    assert verify_signature("s" * 16, good, body, now=1700000000)
    assert not verify_signature("s" * 16, {**good, "X-Signature-Timestamp": "１７００００００００"}, body,
                                now=1700000000)


# --- lone surrogates ---------------------------------------------------------------------------------------

SURROGATES = ["\ud800", "a\udfffb", "\udc80.txt"]


def _link_query(**options: str) -> dict[str, str]:
    link = links.make_link(BASE_URL, "exampledir/a.txt", secret=LINK_SECRET, expires_at=4102444800)
    query = dict(pair.split("=", 1) for pair in link.split("?", 1)[1].split("&"))
    return {**query, **options}


@pytest.mark.parametrize("name", ["disposition", "filename"])
@pytest.mark.parametrize("text", SURROGATES)
def test_lone_surrogate_in_proxy_link_options_is_a_400(name: str, text: str) -> None:
    for api_key in (None, "wrong-key"):  # refused before authentication, whoever asks
        response = download_handler(event("GET", "/download/exampledir/a.txt", query=_link_query(**{name: text}),
                                          api_key=api_key), context())
        _assert_json_error(response, 400)


@pytest.mark.parametrize("text", SURROGATES)
def test_lone_surrogate_anywhere_in_the_request_is_a_400(text: str) -> None:
    cases = [
        event("GET", "/sign", query={"key": "exampledir/a.txt", "filename": text}),
        event("GET", "/sign", query={"key": f"exampledir/{text}"}),
        event("GET", "/sign", query={text: "1"}),
        event("GET", "/sign", headers={"x-api-key": text}, api_key=None),
        event("GET", f"/sign/{text}", query={"key": "exampledir/a.txt"}),
        event("POST", "/sign", body=json.dumps({"key": "exampledir/a.txt", "filename": text})),
        event("POST", "/sign", body=json.dumps({"keys": [{"key": "exampledir/a.txt", text: "x"}]})),
    ]
    for sent in cases:
        _assert_json_error(sign_handler(json.dumps(sent), context()), 400)
    download = event("GET", "/download/exampledir/a.txt", query={"filename": text, "disposition": "inline"})
    _assert_json_error(download_handler(json.dumps(download), context()), 400)
