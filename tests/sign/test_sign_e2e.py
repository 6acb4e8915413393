"""End to end: /sign through the local gateway (function in a worker with its template role credentials),
URLs fetched with plain urllib from the OSS emulator, which verifies every signature independently."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from local.up import Stack, caller_headers, root_bucket
from shared.disposition import content_disposition

E2E_KEYS = {
    "exampledir/e2e/with space.txt": b"space\n",
    "exampledir/e2e/plus+sign.txt": b"plus\n",
    "exampledir/e2e/100%.txt": b"percent\n",
    "exampledir/e2e/%41%2F.txt": b"percent-escapes stay literal\n",
    "exampledir/e2e/hash#tag.txt": b"hash\n",
    "exampledir/e2e/question?mark.txt": b"question\n",
    "exampledir/e2e/\u62a5\u544a \u00e9\u00e8.txt": "unicode \u62a5\u544a\n".encode(),
    "exampledir/e2e//double//slash.txt": b"double slash\n",
    "exampledir/e2e/?starts-with-question": b"leading question mark in the segment\n",
    "exampledir/e2e/a b+c%#?&=.txt": b"all together\n",
}


@pytest.fixture(scope="module")
def stack(local_stack: Stack) -> Iterator[Stack]:
    bucket = root_bucket(local_stack)
    for key, body in E2E_KEYS.items():
        bucket.put_object(key, body)
    yield local_stack


def call(stack: Stack, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    url = stack.gateway.url + path + (f"?{urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    sent = {**caller_headers(stack), **(headers or {})}
    if data is not None:
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def fetch(url: str, *, method: str = "GET", source: str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain urllib GET (no SDK); ``source`` binds the client socket to that loopback address."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_SourceHandler(source)) if source else urllib.request.build_opener()
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class _SourceHandler(urllib.request.HTTPHandler):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def http_open(self, req: urllib.request.Request) -> Any:
        import http.client

        source = self.source

        class Bound(http.client.HTTPConnection):
            def __init__(self, host: str, **kw: Any) -> None:
                super().__init__(host, source_address=(source, 0), **kw)

        return self.do_open(Bound, req)


def test_batch_urls_fetch_the_right_bytes_for_awkward_keys(stack: Stack) -> None:
    keys = list(E2E_KEYS)
    status, headers, data = call(stack, "POST", "/sign", body={"keys": keys, "expires": 600})
    assert status == 200, data
    assert headers["Cache-Control"] == "no-store"
    assert data["failed"] == 0 and [r["key"] for r in data["results"]] == keys
    for result in data["results"]:
        assert result["expires_in"] == 600 and result["url"].startswith(f"http://{stack.cloud.oss_endpoint}/")
        code, _, body = fetch(result["url"])
        assert (code, body) == (200, E2E_KEYS[result["key"]]), result["key"]


def test_get_sign_for_one_key_and_head(stack: Stack) -> None:
    key = "exampledir/e2e/a b+c%#?&=.txt"
    status, _, data = call(stack, "GET", "/sign", query={"key": key, "method": "HEAD"})
    assert status == 200
    code, headers, body = fetch(data["url"], method="HEAD")
    assert (code, body, headers["Content-Length"]) == (200, b"", str(len(E2E_KEYS[key])))
    # a HEAD URL is not a GET URL
    assert fetch(data["url"])[0] == 403


def test_attachment_with_a_unicode_filename(stack: Stack) -> None:
    filename = "\u62a5\u544a 2026 (final).txt"
    status, _, data = call(stack, "GET", "/sign", query={"key": "exampledir/e2e/plus+sign.txt",
                                                         "disposition": "attachment", "filename": filename,
                                                         "content_type": "text/plain; charset=utf-8"})
    assert status == 200
    code, headers, body = fetch(data["url"])
    assert (code, body) == (200, b"plus\n")
    expected = content_disposition(filename, "attachment")
    assert headers["Content-Disposition"] == expected
    assert "filename*=UTF-8''%E6%8A%A5%E5%91%8A%202026%20%28final%29.txt" in expected
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_v1_urls_work(stack: Stack) -> None:
    keys = ["exampledir/e2e/with space.txt", "exampledir/e2e/\u62a5\u544a \u00e9\u00e8.txt"]
    status, _, data = call(stack, "POST", "/sign", body={"keys": keys, "version": "v1", "expires": 300})
    assert status == 200
    for result in data["results"]:
        assert "OSSAccessKeyId=" in result["url"] and "Signature=" in result["url"]
        code, _, body = fetch(result["url"])
        assert (code, body) == (200, E2E_KEYS[result["key"]])


def test_urls_bound_to_another_ip_are_refused(stack: Stack) -> None:
    key = "exampledir/e2e/with space.txt"
    _, _, other = call(stack, "GET", "/sign", query={"key": key, "source_ip": "127.0.0.2"})
    assert "x-oss-ac-source-ip=127.0.0.2" in other["url"]
    code, _, body = fetch(other["url"], source="127.0.0.1")
    assert code == 403 and b"AccessDenied" in body
    assert fetch(other["url"], source="127.0.0.2")[0] == 200  # the bound address itself is let in
    _, _, mine = call(stack, "GET", "/sign", query={"key": key, "bind_ip": "true"})
    assert "x-oss-ac-source-ip=127.0.0.1" in mine["url"]
    code, _, body = fetch(mine["url"], source="127.0.0.1")
    assert (code, body) == (200, E2E_KEYS[key])


def _tamper(url: str, name: str, change: Any) -> str:
    parts = urlsplit(url)
    query = [(k, change(v) if k == name else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_tampered_and_expired_urls_are_refused(stack: Stack) -> None:
    key = "exampledir/e2e/with space.txt"
    _, _, data = call(stack, "GET", "/sign", query={"key": key, "expires": "60"})
    assert fetch(data["url"])[0] == 200
    longer = _tamper(data["url"], "x-oss-expires", lambda v: "604800")
    code, _, body = fetch(longer)
    assert code == 403 and b"SignatureDoesNotMatch" in body
    flipped = _tamper(data["url"], "x-oss-signature", lambda v: ("0" if v[0] != "0" else "1") + v[1:])
    assert fetch(flipped)[0] == 403
    other_key = data["url"].replace("with%20space.txt", "plus%2Bsign.txt")
    assert fetch(other_key)[0] == 403
    verifier = stack.cloud.api.verifier
    real_clock = verifier.clock
    verifier.clock = lambda: real_clock() + 120  # the emulator lives two minutes ahead: the URL has expired
    try:
        code, _, body = fetch(data["url"])
    finally:
        verifier.clock = real_clock
    assert code == 403 and b"AccessDenied" in body and b"expired" in body.lower()


def test_keys_outside_the_scope_are_refused_before_any_signing(stack: Stack) -> None:
    status, _, data = call(stack, "GET", "/sign", query={"key": "users/demo/hello.txt"})
    assert (status, data["code"]) == (403, "KeyOutsideScope")
    assert "url" not in data
    status, _, batch = call(stack, "POST", "/sign", body={"keys": ["exampleobject.txt", "exampledir/e2e/100%.txt"]})
    assert status == 200
    assert batch["results"][0]["error"]["code"] == "KeyOutsideScope" and "url" not in batch["results"][0]
    assert fetch(batch["results"][1]["url"])[2] == b"percent\n"
    assert call(stack, "GET", "/sign", query={"key": "exampledir/x"}, headers={"X-Api-Key": "wrong"})[0] == 401


def test_validity_is_reported_against_the_function_credentials(stack: Stack) -> None:
    _, _, data = call(stack, "GET", "/sign", query={"key": "exampledir/e2e/100%.txt", "expires": "604800"})
    # URL_MAX_EXPIRES (template default) or the function credentials' remaining life, whichever is shorter
    assert data["clamped"] is True and data["clamp_reason"] in {"credentials", "configured_max"}
    expires_at = time.mktime(time.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires_at - (time.time() + data["expires_in"])) < 10
    assert fetch(data["url"])[0] == 200


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_custom_domain_urls(make_stack: Any) -> None:
    """domain=custom: the bucket's CNAME host in the URL, the bucket still signed (no host swap needed)."""
    oss_port = _free_port()
    custom = make_stack(oss_port=oss_port, instances=1,
                        env={"sign": {"OSS_CUSTOM_DOMAIN": f"http://localhost:{oss_port}"}})
    key = "exampledir/a b+c.txt"  # a demo object
    status, _, data = call(custom, "GET", "/sign", query={"key": key, "domain": "custom", "version": "v4"})
    assert status == 200, data
    assert data["url"].startswith(f"http://localhost:{oss_port}/exampledir/a%20b%2Bc.txt?")
    code, _, body = fetch(data["url"])
    assert (code, body) == (200, b"A key with a space and a plus sign.\n")
    _, _, v1 = call(custom, "GET", "/sign", query={"key": key, "domain": "custom", "version": "v1"})
    assert fetch(v1["url"])[0] == 200
    status, _, refused = call(custom, "GET", "/sign", query={"key": key, "domain": "accelerate", "scheme": "ftp"})
    assert (status, refused["code"]) == (400, "InvalidParameter")
