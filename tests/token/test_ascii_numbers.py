"""/sts numbers are ASCII digits only: other scripts' digits pass isdigit() / int() but are a 400, never a 500."""

from __future__ import annotations

import pytest

from functions.token.handler import handler
from tests.token.conftest import API_KEY, body_of, context, make_event

NOT_ASCII_NUMBERS = ["²", "900²", "٩٠٠", "９００", "৯০০", "1_000", "+900", " 9 0 0", "9e2", "0x384"]


@pytest.mark.parametrize("value", NOT_ASCII_NUMBERS)
@pytest.mark.parametrize("where", ["query", "body"])
def test_duration_accepts_ascii_digits_only(env, sts_mock, value: str, where: str) -> None:
    kwargs = {"query": {"duration": value}} if where == "query" else {"body": {"duration": value}}
    response = handler(make_event(method="POST" if where == "body" else "GET", headers={"X-Api-Key": API_KEY},
                                  **kwargs), context())
    assert response["statusCode"] == 400, response
    body = body_of(response)
    assert set(body) == {"code", "message", "requestId"} and body["code"] == "InvalidParameter"
    assert len(sts_mock.calls) == 0
