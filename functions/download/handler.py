"""Download proxy: ``GET|HEAD /download/<key>`` -> a redirect to a fresh signed URL, or the object itself.

Authorization: the caller's credentials (shared/auth.py, key inside its scope) or a proxy link issued
by the sign function (``?exp=..&sig=..``, shared/links.py). The key is the request path after
``/download/``, percent-decoded exactly once (``+`` stays ``+``).

DOWNLOAD_MODE=redirect: 302 to a URL valid DOWNLOAD_REDIRECT_EXPIRES seconds, built by us from the
configured endpoint (or custom domain), bucket and key; nothing from the request chooses the host.

DOWNLOAD_MODE=stream: objects up to DOWNLOAD_STREAM_MAX_BYTES are fetched (signed request) and returned
base64-encoded, with Range (206 / 416), If-None-Match / If-Modified-Since (304), ETag, Last-Modified and
Content-Type passed through. Larger objects are redirected: the size is known from Content-Length
before any of the body is read. Function Compute refuses ``Content-Disposition: attachment`` in a
function's response, so a download asked for as attachment is always redirected (OSS sets the header
through ``response-content-disposition``); inline is served directly.

OSS errors: NoSuchKey -> 404, AccessDenied -> 403, anything else -> 502 (JSON error shape).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from shared import http, links
from shared.auth import authenticate
from shared.config import Settings
from shared.credentials import signing_credentials
from shared.errors import AppError, InvalidParameter, NotFound
from shared.keys import InvalidKey, KeyOutsideScope, validate_key
from shared.signing import PresignOptions, Signer, is_v1_ambiguous_key
from shared.url_options import download_options, url_endpoint
from shared.validity import ValidityPolicy

FUNCTION = "download"
ROUTE_PREFIX = "/download/"
QUERY_OPTIONS = frozenset({"disposition", "filename"})
# Passed through from OSS in stream mode (lowercase names as the storage client returns them).
PASSED_HEADERS = {"content-type": "Content-Type", "etag": "ETag", "last-modified": "Last-Modified",
                  "content-range": "Content-Range", "content-language": "Content-Language",
                  "content-encoding": "Content-Encoding"}
# Served bytes come from users: never let a browser run them as a page of the API's origin.
STREAM_SAFETY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
                         "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes"}


class RangeNotSatisfiable(AppError):
    status = 416
    code = "InvalidRange"


@http.http_handler(FUNCTION, methods=("GET", "HEAD"))
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    key = key_from_raw_path(request.raw_path)
    disposition, content_disposition = _authorize(request, settings, key)
    if settings.download.mode == "stream" and disposition != "attachment":
        return _stream(request, settings, context, key, content_disposition)
    return _redirect(request, settings, context, key, content_disposition)


def key_from_raw_path(raw_path: str) -> str:
    """The object key: everything after ``/download/``, percent-decoded once, as UTF-8 (400 if it is not)."""
    if not raw_path.startswith(ROUTE_PREFIX):
        raise NotFound("no such endpoint; use /download/<key>")
    encoded = raw_path[len(ROUTE_PREFIX):]
    if not encoded:
        raise InvalidParameter("the object key is missing: /download/<key>")
    try:
        key = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise InvalidParameter("the object key is not valid UTF-8 once percent-decoded") from None
    validate_key(key)
    return key


def _authorize(request: http.Request, settings: Settings, key: str) -> tuple[str | None, str | None]:
    """Check the link or the caller; return (disposition, Content-Disposition value) to serve with."""
    if links.is_link_request(request.query):
        options = links.verify_link(key, request.query, secret=settings.download.link_secret, now=time.time())
        disposition, _filename, value = download_options(options)
        return disposition, value
    unknown = sorted(set(request.query) - QUERY_OPTIONS)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0][:40]!r}; accepted: disposition, filename")
    identity = authenticate(request, settings.auth)
    if not identity.allows_key(key):
        raise KeyOutsideScope("the key is outside the caller's scope")
    disposition, _filename, value = download_options(request.query)
    return disposition, value


def _redirect(request: http.Request, settings: Settings, context: Any, key: str,
              content_disposition: str | None) -> http.Response:
    download = settings.download
    if settings.urls.signature_version == "v1" and is_v1_ambiguous_key(key):
        # V1 signs the key raw: the URL's signature would also cover ``<key before '?'>?<sub-resource>``.
        raise InvalidKey("this key cannot be served by a V1 redirect ('?' followed by a sub-resource name)")
    domain = "custom" if settings.oss.custom_domain is not None else "default"
    endpoint = url_endpoint(settings, domain=domain)  # ours, from configuration: never from the request
    floor = min(settings.urls.min_expires, download.redirect_expires)
    signer = Signer(signing_credentials(context, settings), endpoint, settings.oss.bucket, region=settings.oss.region,
                    version=settings.urls.signature_version,  # type: ignore[arg-type]
                    policy=ValidityPolicy(floor_seconds=floor, max_seconds=download.redirect_expires))
    options = PresignOptions(response_content_disposition=content_disposition)
    method = "HEAD" if request.method == "HEAD" else "GET"
    url = signer.presign(key, expires=download.redirect_expires, method=method, options=options,
                         now=datetime.now(timezone.utc))
    return http.redirect(url.url)


def _stream(request: http.Request, settings: Settings, context: Any, key: str,
            content_disposition: str | None) -> http.Response:
    from shared.storage import ObjectTooLarge, OssClient, OssError, to_app_error  # stream mode only

    credentials = signing_credentials(context, settings)
    client = OssClient.from_settings(settings, lambda: credentials, max_retries=2)
    limit = settings.download.stream_max_bytes
    try:
        if request.method == "HEAD":
            info = client.head_object(key)
            if info.size > limit:
                return _redirect(request, settings, context, key, content_disposition)
            return _answer(200, dict(info.headers), b"", content_disposition)
        answer = client.get_object(
            key,
            byte_range=_single_range(request.header("range")),
            if_none_match=request.header("if-none-match"),
            if_modified_since=request.header("if-modified-since"),
            max_bytes=limit,
        )
    except ObjectTooLarge:
        return _redirect(request, settings, context, key, content_disposition)
    except OssError as error:
        if error.status == 416:
            raise RangeNotSatisfiable("the requested range is not satisfiable") from None
        raise to_app_error(error) from None
    return _answer(answer.status, dict(answer.headers), answer.body, content_disposition)


def _single_range(value: str | None) -> str | None:
    """Pass a single ``bytes=`` range through; anything else is ignored (whole object), as OSS does."""
    if not value:
        return None
    value = value.strip()
    if not value.isascii() or not value.lower().startswith("bytes=") or "," in value or len(value) > 64:
        return None
    return value


def _answer(status: int, oss_headers: dict[str, str], body: bytes, content_disposition: str | None) -> http.Response:
    headers = {name: oss_headers[source] for source, name in PASSED_HEADERS.items() if source in oss_headers}
    headers.update(STREAM_SAFETY_HEADERS)
    if content_disposition:
        headers["Content-Disposition"] = content_disposition
    content_type = headers.pop("Content-Type", "application/octet-stream")
    if status == 304:
        return {"statusCode": 304, "headers": headers, "body": "", "isBase64Encoded": False}
    return http.binary_response(status, body, content_type, headers)
