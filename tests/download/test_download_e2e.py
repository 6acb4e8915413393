"""End to end: /download through the local gateway, redirect mode (the demo deployment) and stream mode."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from local.up import Stack, caller_headers, root_bucket
from shared import links
from shared.keys import encode_key_path

OBJECTS = {
    "exampledir/dl/plain.txt": b"0123456789abcdef\n",
    "exampledir/dl/a b+c%#?.txt": b"awkward key\n",
    "exampledir/dl/\u62a5\u544a//\u00e9.bin": bytes(range(256)) * 4,
    "exampledir/dl/big.bin": b"Z" * 3000,
}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request, redirects not followed (plain urllib, no SDK)."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def path_of(key: str) -> str:
    return "/download/" + encode_key_path(key)


def seed(stack: Stack) -> None:
    bucket = root_bucket(stack)
    for key, body in OBJECTS.items():
        bucket.put_object(key, body, headers={"Content-Type": "application/octet-stream"})


@pytest.fixture(scope="module")
def stack(local_stack: Stack) -> Iterator[Stack]:
    seed(local_stack)
    yield local_stack


class TestRedirectMode:
    @pytest.mark.parametrize("key", list(OBJECTS))
    def test_redirect_then_fetch(self, stack: Stack, key: str) -> None:
        code, headers, _ = fetch(stack.gateway.url + path_of(key), headers=caller_headers(stack))
        assert code == 302
        assert headers["Cache-Control"] == "no-store"
        location = headers["Location"]
        assert location.startswith(f"http://{stack.cloud.oss_endpoint}/demo-bucket/")
        code, _, body = fetch(location)
        assert (code, body) == (200, OBJECTS[key])

    def test_head_and_range_through_the_redirect(self, stack: Stack) -> None:
        url = stack.gateway.url + path_of("exampledir/dl/plain.txt")
        code, headers, _ = fetch(url, method="HEAD", headers=caller_headers(stack))
        assert code == 302
        code, head, body = fetch(headers["Location"], method="HEAD")
        assert (code, body, head["Content-Length"]) == (200, b"", "17")
        _, headers, _ = fetch(url, headers=caller_headers(stack))
        code, ranged, body = fetch(headers["Location"], headers={"Range": "bytes=10-15"})
        assert (code, body, ranged["Content-Range"]) == (206, b"abcdef", "bytes 10-15/17")

    def test_missing_keys_and_foreign_keys(self, stack: Stack) -> None:
        code, headers, _ = fetch(stack.gateway.url + path_of("exampledir/dl/missing.txt"),
                                 headers=caller_headers(stack))
        assert code == 302  # redirect mode does not look first: OSS answers the 404
        assert fetch(headers["Location"])[0] == 404
        code, _, body = fetch(stack.gateway.url + path_of("users/demo/hello.txt"), headers=caller_headers(stack))
        assert (code, json.loads(body)["code"]) == (403, "KeyOutsideScope")
        assert fetch(stack.gateway.url + path_of("exampledir/dl/plain.txt"))[0] == 401

    def test_proxy_links_from_the_sign_function(self, stack: Stack) -> None:
        key = "exampledir/dl/a b+c%#?.txt"
        request = urllib.request.Request(
            stack.gateway.url + "/sign?" + urlencode({"key": key, "proxy": "true", "expires": "600",
                                                      "filename": "\u62a5\u544a.txt"}),
            headers=caller_headers(stack))
        with urllib.request.urlopen(request, timeout=30) as response:
            link = json.loads(response.read())["url"]
        assert link.startswith(stack.gateway.url + "/download/")
        assert stack.cloud.oss_endpoint not in link
        code, headers, _ = fetch(link)  # no API key: the link is the authorization
        assert code == 302
        code, served, body = fetch(headers["Location"])
        assert (code, body) == (200, OBJECTS[key])
        assert served["Content-Disposition"].endswith("filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt")
        assert fetch(link, method="HEAD")[0] == 302

        parts = urlsplit(link)
        query = dict(parse_qsl(parts.query))
        for changed in ({**query, "sig": query["sig"][::-1]}, {**query, "exp": str(int(query["exp"]) + 60)},
                        {**query, "filename": "other.txt"}, {k: v for k, v in query.items() if k != "filename"}):
            tampered = urlunsplit(parts._replace(query=urlencode(changed)))
            code, _, body = fetch(tampered)
            assert (code, json.loads(body)["code"]) == (403, "InvalidLink")
        other = urlunsplit(parts._replace(path=path_of("exampledir/dl/plain.txt")))
        assert fetch(other)[0] == 403
        expired = links.make_link(stack.gateway.url, key, secret=stack.secrets.link_secret,
                                  expires_at=int(time.time()) - 5)
        code, _, body = fetch(expired)
        assert (code, json.loads(body)["code"]) == (403, "LinkExpired")


@pytest.fixture(scope="module")
def stream_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from local.up import start_stack

    stack = start_stack(data_dir=tmp_path_factory.mktemp("stream"), auth="apikey", port=0, oss_port=0,
                        sts_port=0, timers=False, echo_logs=False, instances=1,
                        env={"download": {"DOWNLOAD_MODE": "stream", "DOWNLOAD_STREAM_MAX_BYTES": "2048"}})
    seed(stack)
    yield stack
    stack.stop()


class TestStreamMode:
    @pytest.fixture
    def get(self, stream_stack: Stack) -> Callable[..., tuple[int, dict[str, str], bytes]]:
        def get(key: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
            sent = {**caller_headers(stream_stack), **{k.replace("_", "-"): v for k, v in headers.items()}}
            return fetch(stream_stack.gateway.url + path_of(key), method=method, headers=sent)

        return get

    @pytest.mark.parametrize("key", [k for k in OBJECTS if not k.endswith("big.bin")])
    def test_small_objects_are_streamed(self, get: Callable[..., Any], key: str) -> None:
        code, headers, body = get(key)
        assert (code, body) == (200, OBJECTS[key])
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["ETag"] and headers["Last-Modified"]
        assert headers["X-Content-Type-Options"] == "nosniff"

    def test_range_304_and_head(self, get: Callable[..., Any]) -> None:
        code, headers, body = get("exampledir/dl/plain.txt", Range="bytes=0-3")
        assert (code, body, headers["Content-Range"]) == (206, b"0123", "bytes 0-3/17")
        code, _, body = get("exampledir/dl/plain.txt", Range="bytes=99-120")
        assert (code, json.loads(body)["code"]) == (416, "InvalidRange")
        etag = get("exampledir/dl/plain.txt")[1]["ETag"]
        code, headers, body = get("exampledir/dl/plain.txt", If_None_Match=etag)
        assert (code, body, headers["ETag"]) == (304, b"", etag)
        code, headers, body = get("exampledir/dl/plain.txt", method="HEAD")
        assert (code, body, headers["ETag"]) == (200, b"", etag)

    def test_missing_large_and_attachment(self, get: Callable[..., Any], stream_stack: Stack) -> None:
        code, _, body = get("exampledir/dl/missing.txt")
        assert (code, json.loads(body)["code"]) == (404, "NotFound")
        code, headers, _ = get("exampledir/dl/big.bin")
        assert code == 302
        assert fetch(headers["Location"])[2] == OBJECTS["exampledir/dl/big.bin"]
        url = stream_stack.gateway.url + path_of("exampledir/dl/plain.txt") + "?disposition=attachment"
        code, headers, _ = fetch(url, headers=caller_headers(stream_stack))
        assert code == 302  # Function Compute refuses Content-Disposition: attachment from a function
        code, served, body = fetch(headers["Location"])
        assert (code, body, served["Content-Disposition"]) == (200, OBJECTS["exampledir/dl/plain.txt"],
                                                              "attachment")
