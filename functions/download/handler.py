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

Scope: redirects are signed and streams fetched with credentials narrowed to the caller's scope
(shared/credentials.py), or, for a proxy link (which does not carry its issuer's scope), to the key's own
directory. With URL_SYMLINK_CHECK (default) a symlink whose target is outside that scope is refused with
403 SymlinkOutOfScope (shared/symlinks.py): a redirect HEADs the key first; a stream looks only when OSS's
answer says the key is a link (or refuses it), before any byte is passed on.

OSS errors: NoSuchKey -> 404, AccessDenied -> 403, anything else -> 502 (JSON error shape).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from shared import http, links, symlinks
from shared.auth import authenticate
from shared.config import Settings
from shared.credentials import SigningScope, signing_credentials
from shared.errors import AppError, InvalidParameter, NotFound
from shared.keys import InvalidKey, KeyOutsideScope, validate_key
from shared.scoped_signing import directory_scope
from shared.signing import Credentials, PresignOptions, Signer, is_v1_ambiguous_key
from shared.url_options import download_options, url_endpoint
from shared.validity import ValidityPolicy

if TYPE_CHECKING:
    from shared.storage import OssClient

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
    scope, disposition, content_disposition = _authorize(request, settings, key)
    access = _Access(settings, context, key, scope)
    if settings.download.mode == "stream" and disposition != "attachment":
        return _stream(request, settings, access, content_disposition)
    return _redirect(request, settings, access, content_disposition)


class _Access:
    """The key, the scope it is served under, and credentials that reach no further (fetched once)."""

    def __init__(self, settings: Settings, context: Any, key: str, scope: str) -> None:
        self.settings = settings
        self.context = context
        self.key = key
        self.scope = scope
        self._credentials: Credentials | None = None
        self._links_checked = False

    def allows(self, key: str) -> bool:
        return key.startswith(self.scope)

    def check_links(self) -> None:
        """403 SymlinkOutOfScope if the key is a link leaving the scope (URL_SYMLINK_CHECK; once per request)."""
        if self.settings.urls.symlink_check and not self._links_checked:
            symlinks.inspect(self.client(), self.key, self.allows)
            self._links_checked = True

    def credentials(self) -> Credentials:
        if self._credentials is None:
            narrowed = directory_scope(self.scope + "x")  # None: no '/'-ended prefix usable in a policy
            scope = SigningScope.of([narrowed]) if narrowed else None
            self._credentials = signing_credentials(self.context, self.settings, scope)
        return self._credentials

    def client(self) -> OssClient:
        from shared.storage import OssClient  # only when HEADing or streaming: urllib3 stays out otherwise

        credentials = self.credentials()
        return OssClient.from_settings(self.settings, lambda: credentials, max_retries=2)


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


def _authorize(request: http.Request, settings: Settings, key: str) -> tuple[str, str | None, str | None]:
    """Check the link or the caller; return (scope, disposition, Content-Disposition value) to serve with.

    A proxy link names one key, not its issuer's scope: it is served under the key's own directory."""
    if links.is_link_request(request.query):
        download = settings.download
        options = links.verify_link(key, request.query, secret=download.link_secret, now=time.time(),
                                    previous=download.previous_link_secret, previous_until=download.previous_link_until)
        disposition, _filename, value = download_options(options)
        return key[:key.rfind("/") + 1], disposition, value
    unknown = sorted(set(request.query) - QUERY_OPTIONS)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0][:40]!r}; accepted: disposition, filename")
    identity = authenticate(request, settings.auth)
    if not identity.allows_key(key):
        raise KeyOutsideScope("the key is outside the caller's scope")
    disposition, _filename, value = download_options(request.query)
    return identity.scope, disposition, value


def _redirect(request: http.Request, settings: Settings, access: _Access,
              content_disposition: str | None) -> http.Response:
    key = access.key
    access.check_links()  # a redirect hands out a URL: look before
    download = settings.download
    if settings.urls.signature_version == "v1" and is_v1_ambiguous_key(key):
        # V1 signs the key raw: the URL's signature would also cover ``<key before '?'>?<sub-resource>``.
        raise InvalidKey("this key cannot be served by a V1 redirect ('?' followed by a sub-resource name)")
    domain = "custom" if settings.oss.custom_domain is not None else "default"
    endpoint = url_endpoint(settings, domain=domain)  # ours, from configuration: never from the request
    floor = min(settings.urls.min_expires, download.redirect_expires)
    signer = Signer(access.credentials(), endpoint, settings.oss.bucket, region=settings.oss.region,
                    version=settings.urls.signature_version,  # type: ignore[arg-type]
                    policy=ValidityPolicy(floor_seconds=floor, max_seconds=download.redirect_expires))
    options = PresignOptions(response_content_disposition=content_disposition)
    method = "HEAD" if request.method == "HEAD" else "GET"
    url = signer.presign(key, expires=download.redirect_expires, method=method, options=options,
                         now=datetime.now(timezone.utc))
    return http.redirect(url.url)


def _stream(request: http.Request, settings: Settings, access: _Access,
            content_disposition: str | None) -> http.Response:
    from shared.storage import ObjectTooLarge, OssError, to_app_error  # stream mode only

    key = access.key
    client = access.client()
    limit = settings.download.stream_max_bytes
    # No HEAD first: OSS answers through a link with x-oss-object-type: Symlink, so only then is it looked at
    # (GetSymlink), before any byte is passed on; a refusal (403) may be a link's target: looked at too.
    try:
        if request.method == "HEAD":
            info = client.head_object(key)
            if _is_link(info.headers):
                access.check_links()
            if info.size > limit:
                return _redirect(request, settings, access, content_disposition)
            return _answer(200, dict(info.headers), b"", content_disposition)
        answer = client.get_object(
            key,
            byte_range=_single_range(request.header("range")),
            if_none_match=request.header("if-none-match"),
            if_modified_since=request.header("if-modified-since"),
            max_bytes=limit,
        )
    except ObjectTooLarge:
        return _redirect(request, settings, access, content_disposition)
    except OssError as error:
        if error.status in (400, 403, 404):
            access.check_links()
        if error.status == 416:
            raise RangeNotSatisfiable("the requested range is not satisfiable") from None
        raise to_app_error(error) from None
    if _is_link(answer.headers):
        access.check_links()
    return _answer(answer.status, dict(answer.headers), answer.body, content_disposition)


def _is_link(headers: Mapping[str, str]) -> bool:
    return headers.get("x-oss-object-type", "").lower() == "symlink"


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
