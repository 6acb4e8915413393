"""What a /download request gets: who may have the key, then a redirect to a fresh URL or the bytes.

Authorization: the caller's credentials (shared/auth.py, key inside its scope) or a proxy link issued by the
sign function (``?exp=..&sig=..``, shared/links.py). The key is the request path after ``/download/``,
percent-decoded exactly once (``+`` stays ``+``).

DOWNLOAD_MODE=redirect: a URL valid DOWNLOAD_REDIRECT_EXPIRES seconds, built from the configured endpoint
(or custom domain), bucket and key; nothing from the request chooses the host.

DOWNLOAD_MODE=stream: objects up to DOWNLOAD_STREAM_MAX_BYTES are fetched (signed request) and returned,
with Range (206 / 416), If-None-Match / If-Modified-Since (304), ETag, Last-Modified and Content-Type
passed through. Larger objects are redirected: the size is known from Content-Length before any of the body
is read. Function Compute refuses ``Content-Disposition: attachment`` in a function's response, so a
download asked for as attachment is always redirected (OSS sets the header through
``response-content-disposition``); inline is served directly.

Scope: redirects are signed and streams fetched with credentials narrowed to the caller's scope
(shared/credentials.py), or, for a proxy link (which does not carry its issuer's scope), to the key's own
directory. With URL_SYMLINK_CHECK (default) a symlink whose target is outside that scope is refused with
403 SymlinkOutOfScope (shared/symlinks.py): a redirect HEADs the key first; a stream looks only when OSS's
answer says the key is a link (or refuses it), before any byte is passed on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared import links, revocation, symlinks
from shared.auth import authenticate
from shared.config import Settings
from shared.credentials import SigningScope, signing_credentials
from shared.errors import AppError, InvalidParameter
from shared.http import Request
from shared.keys import InvalidKey, KeyOutsideScope
from shared.scoped_signing import directory_scope
from shared.signing import Credentials, PresignOptions, Signer, is_v1_ambiguous_key
from shared.url_options import download_options, url_endpoint
from shared.validity import ValidityPolicy

if TYPE_CHECKING:
    from shared.storage import OssClient

QUERY_OPTIONS = frozenset({"disposition", "filename"})


class RangeNotSatisfiable(AppError):
    status = 416
    code = "InvalidRange"


@dataclass(frozen=True)
class Grant:
    """What the request may have: the key, the scope it is served under and how it is to be saved."""

    key: str
    scope: str
    disposition: str | None
    content_disposition: str | None
    link_signature: str | None = None  # a proxy link's: its id is checked against the revoked ones


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Served:
    """An object (or its headers, or a 304) served by the function; headers as OSS named them (lowercase)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    content_disposition: str | None


def authorize(request: Request, settings: Settings) -> Grant:
    """Check the link or the caller for the requested key. A proxy link names one key, not its issuer's
    scope: it is served under the key's own directory."""
    key = links.key_from_raw_path(request.raw_path)
    if links.is_link_request(request.query):
        download = settings.download
        options = links.verify_link(key, request.query, secret=download.link_secret, now=time.time(),
                                    previous=download.previous_link_secret, previous_until=download.previous_link_until)
        disposition, _filename, value = download_options(options)
        return Grant(key, key[:key.rfind("/") + 1], disposition, value, request.query["sig"])
    unknown = sorted(set(request.query) - QUERY_OPTIONS)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0][:40]!r}; accepted: disposition, filename")
    identity = authenticate(request, settings.auth)
    if not identity.allows_key(key):
        raise KeyOutsideScope("the key is outside the caller's scope")
    disposition, _filename, value = download_options(request.query)
    return Grant(key, identity.scope, disposition, value)


def serve(request: Request, settings: Settings, context: Any, grant: Grant) -> Redirect | Served:
    if grant.link_signature is not None and settings.download.link_revocation:
        _refuse_revoked(settings, context, grant.link_signature)
    access = _Access(settings, context, grant)
    if settings.download.mode == "stream" and grant.disposition != "attachment":
        return _stream(request, access)
    return _redirect(request.method, access)


def _refuse_revoked(settings: Settings, context: Any, signature: str) -> None:
    """403 LinkRevoked for a link its creator took back (shared/revocation.py: a list cached per instance,
    read with the function's own role, which may list only the records)."""
    from shared.credentials import function_credentials_for
    from shared.storage import OssClient

    def recorded() -> list[str]:
        credentials = function_credentials_for(context, settings)
        client = OssClient.from_settings(settings, lambda: credentials, max_retries=1)
        return [info.key for info in client.iter_objects(revocation.PREFIX)]

    revocation.check(signature, recorded)


class _Access:
    """The grant, and credentials that reach no further than its scope (fetched once)."""

    def __init__(self, settings: Settings, context: Any, grant: Grant) -> None:
        self.settings = settings
        self.context = context
        self.grant = grant
        self._credentials: Credentials | None = None
        self._links_checked = False

    def allows(self, key: str) -> bool:
        return key.startswith(self.grant.scope)

    def check_links(self) -> None:
        """403 SymlinkOutOfScope if the key is a link leaving the scope (URL_SYMLINK_CHECK; once per request)."""
        if self.settings.urls.symlink_check and not self._links_checked:
            symlinks.inspect(self.client(), self.grant.key, self.allows)
            self._links_checked = True

    def credentials(self) -> Credentials:
        if self._credentials is None:
            narrowed = directory_scope(self.grant.scope + "x")  # None: no '/'-ended prefix usable in a policy
            scope = SigningScope.of([narrowed]) if narrowed else None
            self._credentials = signing_credentials(self.context, self.settings, scope)
        return self._credentials

    def client(self) -> OssClient:
        from shared.storage import OssClient  # only when HEADing or streaming: urllib3 stays out otherwise

        credentials = self.credentials()
        return OssClient.from_settings(self.settings, lambda: credentials, max_retries=2)


def _redirect(method: str, access: _Access) -> Redirect:
    settings, key = access.settings, access.grant.key
    access.check_links()  # a redirect hands out a URL: look before
    download = settings.download
    if settings.urls.signature_version == "v1" and is_v1_ambiguous_key(key):
        # V1 signs the key raw: the URL's signature would also cover ``<key before '?'>?<sub-resource>``.
        raise InvalidKey("this key cannot be served by a V1 redirect ('?' followed by a sub-resource name)")
    domain = "custom" if settings.oss.custom_domain is not None else "default"
    endpoint = url_endpoint(settings, domain=domain)  # ours, from configuration: never from the request
    floor = min(settings.urls.min_expires, download.redirect_expires)
    signer = Signer(access.credentials(), endpoint, settings.oss.bucket, region=settings.oss.region,
                    version=settings.urls.signature_version,
                    policy=ValidityPolicy(floor_seconds=floor, max_seconds=download.redirect_expires))
    options = PresignOptions(response_content_disposition=access.grant.content_disposition)
    url = signer.presign(key, expires=download.redirect_expires, method="HEAD" if method == "HEAD" else "GET",
                         options=options, now=datetime.now(timezone.utc))
    return Redirect(url.url)


def _stream(request: Request, access: _Access) -> Redirect | Served:
    from shared.storage import ObjectTooLarge, OssError, to_app_error  # stream mode only

    key, limit = access.grant.key, access.settings.download.stream_max_bytes
    client = access.client()
    # No HEAD first: OSS answers through a link with x-oss-object-type: Symlink, so only then is it looked at
    # (GetSymlink), before any byte is passed on; a refusal (403) may be a link's target: looked at too.
    try:
        if request.method == "HEAD":
            info = client.head_object(key)
            if _is_link(info.headers):
                access.check_links()
            if info.size > limit:
                return _redirect(request.method, access)
            return Served(200, dict(info.headers), b"", access.grant.content_disposition)
        answer = client.get_object(key, byte_range=_single_range(request.header("range")),
                                   if_none_match=request.header("if-none-match"),
                                   if_modified_since=request.header("if-modified-since"), max_bytes=limit)
    except ObjectTooLarge:
        return _redirect(request.method, access)
    except OssError as error:
        if error.status in (400, 403, 404):
            access.check_links()
        if error.status == 416:
            raise RangeNotSatisfiable("the requested range is not satisfiable") from None
        raise to_app_error(error) from None
    if _is_link(answer.headers):
        access.check_links()
    return Served(answer.status, dict(answer.headers), answer.body, access.grant.content_disposition)


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
