"""The download function in-process: key decoding, auth or proxy links, redirect and stream modes, errors."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from functions.download.handler import handler
from local.cloud import LocalCloud
from local.sts import Role
from shared import links
from shared.errors import AppError
from shared.links import key_from_raw_path
from tests.sign.helpers import BUCKET, LINK_SECRET, body_of, context, event, install_env, local_cloud, oss2_bucket

OBJECTS = {
    "exampledir/hello.txt": (b"Hello, world!\n", "text/plain; charset=utf-8"),
    "exampledir/a b+c%#?.txt": (b"odd key\n", "text/plain"),
    "exampledir/\u62a5\u544a//x.bin": (bytes(range(256)), "application/octet-stream"),
    "exampledir/big.bin": (b"B" * 5000, "application/octet-stream"),
    "exampledir/page.html": (b"<script>alert(1)</script>", "text/html"),
}


@pytest.mark.parametrize(("raw_path", "key"), [
    ("/download/exampledir/a%20b%2Bc.txt", "exampledir/a b+c.txt"),
    ("/download/exampledir/a+b.txt", "exampledir/a+b.txt"),
    ("/download/exampledir/100%25.txt", "exampledir/100%.txt"),
    ("/download/exampledir/%2523", "exampledir/%23"),
    ("/download/exampledir/%23%3F", "exampledir/#?"),
    ("/download/exampledir//x", "exampledir//x"),
    ("/download/exampledir/%E6%8A%A5%E5%91%8A.txt", "exampledir/\u62a5\u544a.txt"),
    ("/download/exampledir/%2E%2E/x", "exampledir/../x"),
])
def test_the_key_is_the_path_decoded_exactly_once(raw_path: str, key: str) -> None:
    assert key_from_raw_path(raw_path) == key


@pytest.mark.parametrize(("raw_path", "status"), [
    ("/download/", 400), ("/download/exampledir/%FF", 400), ("/download/%2Fabs", 400), ("/other/x", 404),
    ("/download/a%00b", 400), ("/downloadx/a", 404),
])
def test_bad_paths(raw_path: str, status: int) -> None:
    with pytest.raises(AppError) as error:
        key_from_raw_path(raw_path)
    assert error.value.status == status


def download(raw_path: str, *, method: str = "GET", query: dict[str, str] | None = None, ctx: Any = None,
             **kw: Any) -> dict[str, Any]:
    return handler(event(method, raw_path, query=query, **kw), ctx or context())


class TestRedirectMode:
    @pytest.fixture(autouse=True)
    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        install_env(monkeypatch)

    def test_redirects_to_a_fresh_short_lived_url_built_from_configuration(self) -> None:
        response = download("/download/exampledir/a%20b%2Bc.txt",
                            headers={"host": "evil.example.com", "x-forwarded-host": "evil.example.com"})
        assert response["statusCode"] == 302
        assert response["headers"]["Cache-Control"] == "no-store"
        location = urlsplit(response["headers"]["Location"])
        assert (location.scheme, location.netloc) == ("https", f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com")
        assert location.path == "/exampledir/a%20b%2Bc.txt"
        assert parse_qs(location.query)["x-oss-expires"] == ["60"]

    def test_head_is_redirected_to_a_head_url(self) -> None:
        get = urlsplit(download("/download/exampledir/a")["headers"]["Location"])
        head = urlsplit(download("/download/exampledir/a", method="HEAD")["headers"]["Location"])
        assert get.path == head.path and parse_qs(get.query)["x-oss-signature"] != parse_qs(head.query)[
            "x-oss-signature"]

    def test_custom_domain_when_configured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        install_env(monkeypatch, OSS_CUSTOM_DOMAIN="files.example.com", DOWNLOAD_REDIRECT_EXPIRES="30")
        location = urlsplit(download("/download/exampledir/a")["headers"]["Location"])
        assert location.netloc == "files.example.com" and location.path == "/exampledir/a"
        assert parse_qs(location.query)["x-oss-expires"] == ["30"]

    def test_disposition_goes_into_the_signed_url(self) -> None:
        response = download("/download/exampledir/a", query={"filename": "\u62a5\u544a.pdf"})
        query = parse_qs(urlsplit(response["headers"]["Location"]).query)
        assert query["response-content-disposition"] == [
            "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"]

    def test_callers_are_authenticated_and_scoped(self) -> None:
        assert download("/download/exampledir/a", api_key=None)["statusCode"] == 401
        no_credentials = context(with_credentials=False)
        outside = download("/download/otherdir/a", ctx=no_credentials)
        assert (outside["statusCode"], body_of(outside)["code"]) == (403, "KeyOutsideScope")
        unknown = download("/download/exampledir/a", query={"url": "https://evil.example.com/"})
        assert unknown["statusCode"] == 400

    def test_proxy_links(self) -> None:
        key = "exampledir/a b+c%#?.txt"
        link = links.make_link("https://api.example.test", key, secret=LINK_SECRET, expires_at=int(time.time()) + 60,
                               options={"disposition": "inline"})
        parts = urlsplit(link)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        ok = download(parts.path, query=query, api_key=None)
        assert ok["statusCode"] == 302
        assert parse_qs(urlsplit(ok["headers"]["Location"]).query)["response-content-disposition"] == ["inline"]
        assert download(parts.path, method="HEAD", query=query, api_key=None)["statusCode"] == 302
        tampered = download(parts.path, query={**query, "disposition": "attachment"}, api_key=None)
        assert (tampered["statusCode"], body_of(tampered)["code"]) == (403, "InvalidLink")
        other_key = download("/download/exampledir/other.txt", query=query, api_key=None)
        assert other_key["statusCode"] == 403
        old = links.make_link("https://api.example.test", key, secret=LINK_SECRET, expires_at=int(time.time()) - 1)
        old_parts = urlsplit(old)
        expired = download(old_parts.path, query={k: v[0] for k, v in parse_qs(old_parts.query).items()},
                           api_key=None)
        assert (expired["statusCode"], body_of(expired)["code"]) == (403, "LinkExpired")
        # a link is no key: it does not open other keys, even inside the scope of a valid API key holder
        assert unquote(parts.path) == f"/download/{key}"

    def test_credentials_below_the_floor_are_a_503(self) -> None:
        response = download("/download/exampledir/a", ctx=context(expires_in=20))
        assert (response["statusCode"], body_of(response)["code"]) == (503, "CredentialsExpiring")

    def test_methods(self) -> None:
        assert download("/download/exampledir/a", method="POST")["statusCode"] == 405


# --- stream mode against the emulator -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(Path(tmp_path_factory.mktemp("download")) / "data") as started:
        bucket = oss2_bucket(started)
        for key, (body, content_type) in OBJECTS.items():
            bucket.put_object(key, body, headers={"Content-Type": content_type})
        yield started


def encoded(key: str) -> str:
    from shared.keys import encode_key_path

    return "/download/" + encode_key_path(key)


class TestStreamMode:
    @pytest.fixture(autouse=True)
    def env(self, monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud) -> None:
        install_env(monkeypatch, DOWNLOAD_MODE="stream", DOWNLOAD_STREAM_MAX_BYTES="4096",
                    OSS_ENDPOINT=f"http://{cloud.oss_endpoint}")

    @pytest.mark.parametrize("key", [k for k in OBJECTS if k != "exampledir/big.bin"])
    def test_small_objects_are_served(self, key: str) -> None:
        response = download(encoded(key))
        assert response["statusCode"] == 200, response
        assert response["isBase64Encoded"] is True
        body, content_type = OBJECTS[key]
        assert base64.b64decode(response["body"]) == body
        headers = response["headers"]
        assert headers["Content-Type"] == content_type
        assert headers["ETag"].startswith('"') and headers["Last-Modified"].endswith("GMT")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]
        assert "Content-Disposition" not in headers and "Content-Length" not in headers

    def test_range_and_conditional_requests(self) -> None:
        key = encoded("exampledir/hello.txt")
        partial = download(key, headers={"range": "bytes=0-4"})
        assert partial["statusCode"] == 206
        assert base64.b64decode(partial["body"]) == b"Hello"
        assert partial["headers"]["Content-Range"] == "bytes 0-4/14"
        suffix = download(key, headers={"range": "bytes=-6"})
        assert base64.b64decode(suffix["body"]) == b"world!\n"[-6:]
        unsatisfiable = download(key, headers={"range": "bytes=100-200"})
        assert (unsatisfiable["statusCode"], body_of(unsatisfiable)["code"]) == (416, "InvalidRange")
        multi = download(key, headers={"range": "bytes=0-1,3-4"})
        assert multi["statusCode"] == 200  # multi-range is ignored, as OSS does
        etag = download(key)["headers"]["ETag"]
        not_modified = download(key, headers={"if-none-match": etag})
        assert (not_modified["statusCode"], not_modified["body"]) == (304, "")
        assert not_modified["headers"]["ETag"] == etag
        assert download(key, headers={"if-none-match": '"stale"'})["statusCode"] == 200

    def test_head(self) -> None:
        response = download(encoded("exampledir/hello.txt"), method="HEAD")
        assert response["statusCode"] == 200 and base64.b64decode(response["body"]) == b""
        assert response["headers"]["ETag"] and response["headers"]["Content-Type"].startswith("text/plain")
        big = download(encoded("exampledir/big.bin"), method="HEAD")
        assert big["statusCode"] == 302

    def test_large_objects_and_attachments_are_redirected(self) -> None:
        big = download(encoded("exampledir/big.bin"))
        assert big["statusCode"] == 302
        assert urlsplit(big["headers"]["Location"]).path == f"/{BUCKET}/exampledir/big.bin"
        attachment = download(encoded("exampledir/hello.txt"), query={"disposition": "attachment"})
        assert attachment["statusCode"] == 302
        inline = download(encoded("exampledir/hello.txt"), query={"disposition": "inline", "filename": "h.txt"})
        assert inline["statusCode"] == 200
        assert inline["headers"]["Content-Disposition"] == "inline; filename=\"h.txt\"; filename*=UTF-8''h.txt"

    def test_missing_objects_are_a_clean_404(self) -> None:
        for method in ("GET", "HEAD"):
            response = download("/download/exampledir/missing.txt", method=method)
            assert response["statusCode"] == 404
            if method == "GET":  # a HEAD answer carries no body
                assert body_of(response) == {"code": "NotFound", "message": "the object does not exist",
                                             "requestId": "req-test-1"}

    def test_access_denied_is_a_403_and_unreachable_is_a_502(self, cloud: LocalCloud,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        role = Role(arn="acs:ram::1234567890123456:role/narrow-download",
                    policies=[{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"],
                                                              "Resource": [f"acs:oss:*:*:{BUCKET}/nothing/*"]}]}],
                    trust=["acs:ram::1234567890123456:root"])
        session = cloud.token_store.issue(role, "narrow", 900, None)
        narrow = context(access_key_id=session.access_key_id, secret=session.access_key_secret,
                         token=session.security_token, expires_in=900)
        denied = download(encoded("exampledir/hello.txt"), ctx=narrow)
        assert (denied["statusCode"], body_of(denied)["code"]) == (403, "Forbidden")
        install_env(monkeypatch, DOWNLOAD_MODE="stream", OSS_ENDPOINT="http://127.0.0.1:9")
        unreachable = download(encoded("exampledir/hello.txt"))
        assert (unreachable["statusCode"], body_of(unreachable)["code"]) == (502, "UpstreamError")
