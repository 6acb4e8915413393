"""Adversarial review of the download function's stream mode against the emulator (a real upstream).

Conditional and Range headers come from the caller and reach a signed OSS request: garbage must be a
4xx (or be ignored), never a 500; served bytes are never a page of the API's origin; HEAD has no body.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.download.handler import handler
from local.cloud import LocalCloud
from tests.sign.helpers import context, event, install_env, local_cloud, oss2_bucket

OBJECTS = {
    "exampledir/page.html": (b"<script>alert(document.domain)</script>", "text/html"),
    "exampledir/image.svg": (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/svg+xml"),
    "exampledir/none": (b"<html><script>alert(1)</script>", ""),
    "exampledir/big.bin": (b"B" * 5000, "application/octet-stream"),
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(Path(tmp_path_factory.mktemp("review-stream")) / "data") as started:
        bucket = oss2_bucket(started)
        for key, (body, content_type) in OBJECTS.items():
            bucket.put_object(key, body, headers={"Content-Type": content_type} if content_type else None)
        yield started


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud) -> None:
    install_env(monkeypatch, DOWNLOAD_MODE="stream", DOWNLOAD_STREAM_MAX_BYTES="4096",
                OSS_ENDPOINT=f"http://{cloud.oss_endpoint}")


def download(key: str, *, method: str = "GET", headers: dict[str, str] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
    return handler(event(method, f"/download/{key}", headers=headers, query=query), context())


@pytest.mark.parametrize("key", ["exampledir/page.html", "exampledir/image.svg", "exampledir/none"])
@pytest.mark.parametrize("query", [{}, {"disposition": "inline"}, {"disposition": "inline", "filename": "x.html"}])
def test_active_content_is_never_a_page_of_the_api_origin(key: str, query: dict[str, str]) -> None:
    response = download(key, query=query)
    assert response["statusCode"] == 200
    headers = response["headers"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy


def test_head_has_headers_and_no_body() -> None:
    response = download("exampledir/page.html", method="HEAD")
    assert response["statusCode"] == 200 and response["body"] == ""
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"


header_values = st.one_of(
    st.text(max_size=70),
    st.sampled_from(["bytes=0-0", "bytes=-1", "bytes=5-1", "bytes=0-1,2-3", "bytes=999999999999999999999-",
                     "bytes=-0", "bytes=--1", "items=0-1", "bytes=0-1\r\nX-Injected: 1", "bytes=\u00e9",
                     "Wed, 21 Oct 2015 07:28:00 GMT", "\"etag\"", "*", "W/\"x\"", "0", "\x00"]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(st.sampled_from(["range", "if-none-match", "if-modified-since", "if-match"]),
                               header_values, max_size=3),
       key=st.sampled_from(["exampledir/page.html", "exampledir/big.bin", "exampledir/missing"]),
       method=st.sampled_from(["GET", "HEAD"]))
def test_caller_headers_never_make_a_500(headers: dict[str, str], key: str, method: str) -> None:
    response = download(key, method=method, headers=headers)
    status = response["statusCode"]
    assert status in (200, 206, 302, 304, 400, 404, 412, 416), response
    for name, value in response["headers"].items():
        assert "\r" not in value and "\n" not in value, name
    if status >= 400 and response["body"]:
        assert set(json.loads(response["body"])) == {"code", "message", "requestId"}
    if status in (200, 206) and method == "GET":
        assert len(base64.b64decode(response["body"])) <= 4096
