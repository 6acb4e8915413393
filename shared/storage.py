"""A lightweight OSS client: urllib3 + our own header signing (shared/signing/), never an SDK.

Why not oss2: importing it costs ~0.3 s (seconds on small FC instances) and a client per call costs
more still; the functions need a dozen operations. ``OssClient`` is cheap to build (the connection
pool is one per container, shared), takes a credentials *provider* so rotated credentials are picked
up, signs every request (V4 by default) and parses OSS's XML answers and errors.

Retries: requests that are safe to repeat (GET, HEAD, PUT of a whole object or a part, DELETE, list)
are retried on connection errors and 5xx answers with jittered exponential backoff, a bounded number
of times. Initiate/complete multipart (POST) are not retried blindly.

Errors: every OSS error answer becomes ``OssError(status, code, message, request_id)`` parsed from
the error XML (or from the base64 ``x-oss-err`` header for HEAD, which has no body). Connection
failures after the retries become ``OssError`` with status 0 and code ``RequestError``.
``to_app_error`` maps an ``OssError`` to the answer a caller should see (404 / 403 / 502).
ETags are returned without their surrounding quotes (as oss2 does).
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import urllib3

from shared import config as config_module
from shared.errors import AppError, Forbidden, NotFound, UpstreamError
from shared.outbound import connection_pool
from shared.signing import Credentials, Endpoint, Signer, http_date
from shared.url_options import signing_endpoint  # re-exported
from shared.validity import parse_utc, to_utc

if TYPE_CHECKING:
    from shared.validity import Version

__all__ = [
    "ListPage",
    "ObjectInfo",
    "ObjectResponse",
    "OssClient",
    "OssError",
    "signing_endpoint",
    "to_app_error",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0
MAX_ERROR_BODY_BYTES = 64 * 1024
_EMPTY: Mapping[str, str] = MappingProxyType({})

# Connection-level failures worth another attempt (refused, reset, timed out, broken response).
_RETRYABLE_EXCEPTIONS = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # without quotes
    last_modified: datetime
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)
    object_type: str = ""  # Normal, Appendable, Multipart, Symlink (listings say; HEAD: x-oss-object-type)


@dataclass(frozen=True)
class ListPage:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    next_continuation_token: str | None
    is_truncated: bool


class ObjectResponse(NamedTuple):
    """A GET answer: 200, 206 (range) or 304 (not modified); headers with lowercase names."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class OssError(Exception):
    """An error answer from OSS (or status 0 / RequestError when OSS could not be reached)."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None,
                 ec: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.ec = ec

    def __repr__(self) -> str:
        return f"OssError(status={self.status}, code={self.code!r}, request_id={self.request_id!r})"


class ObjectTooLarge(OssError):
    """Raised by ``get_object(max_bytes=...)`` before the body is read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(413, "ObjectTooLarge", f"object is {size} bytes, over the {limit} bytes limit")
        self.size = size
        self.limit = limit


def to_app_error(error: OssError) -> AppError:
    """NoSuchKey -> 404, AccessDenied -> 403, anything else -> 502; never echoes OSS internals."""
    if error.code in ("NoSuchKey", "NoSuchVersion"):
        return NotFound("the object does not exist")
    if error.code == "AccessDenied":
        return Forbidden("access to the object was denied")
    suffix = f" (OSS request id {error.request_id})" if error.request_id else ""
    return UpstreamError(f"the object store failed: {error.code}{suffix}")


# --- the client -------------------------------------------------------------------------------------------


class OssClient:
    """Object operations on one bucket, signed with the credentials ``credentials()`` returns."""

    def __init__(
        self,
        *,
        credentials: Callable[[], Credentials],
        bucket: str,
        region: str,
        endpoint: Endpoint | config_module.ConfiguredHost,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        version: Version = "v4",
        path_style: bool | None = None,
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(endpoint, config_module.ConfiguredHost):
            endpoint = signing_endpoint(endpoint, path_style=endpoint.is_ip if path_style is None else path_style)
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint
        self.version: Version = version
        self.max_retries = max_retries
        self._credentials = credentials
        self._timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self._pool = pool or connection_pool()
        self._sleep = sleep
        self._signer: Signer | None = None
        self._signer_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: config_module.Settings, credentials_provider: Callable[[], Credentials],
                      **kwargs: Any) -> OssClient:
        oss = settings.oss
        endpoint = oss.request_endpoint
        target = signing_endpoint(endpoint, path_style=oss.uses_path_style(endpoint),
                                  scheme=endpoint.scheme or settings.urls.scheme or "https")
        return cls(credentials=credentials_provider, bucket=oss.bucket, region=oss.region, endpoint=target, **kwargs)

    def __repr__(self) -> str:
        return f"OssClient(bucket={self.bucket!r}, endpoint={self.endpoint!r}, version={self.version!r})"

    def signer(self) -> Signer:
        """The signer for the current credentials (rebuilt only when the provider returns new ones)."""
        credentials = self._credentials()
        signer = self._signer
        if signer is None or signer.credentials is not credentials:
            with self._signer_lock:
                signer = Signer(credentials, self.endpoint, self.bucket, region=self.region, version=self.version)
                self._signer = signer
        return signer

    # -- objects -----------------------------------------------------------------------------------------

    def head_object(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        params = {"versionId": version_id} if version_id else None
        response = self._request("HEAD", key, params=params)
        return _object_info(key, response.headers)

    def get_symlink(self, key: str, *, version_id: str | None = None) -> str:
        """GetSymlink: the key a symlink points to (OSS sends it percent-encoded in x-oss-symlink-target)."""
        from urllib.parse import unquote

        params: dict[str, str | None] = {"symlink": None}
        if version_id:
            params["versionId"] = version_id
        response = self._request("GET", key, params=params)
        return unquote(response.headers.get("x-oss-symlink-target", ""), errors="strict")

    def get_object(
        self,
        key: str,
        *,
        byte_range: str | None = None,
        if_none_match: str | None = None,
        if_modified_since: datetime | str | None = None,
        version_id: str | None = None,
        max_bytes: int | None = None,
    ) -> ObjectResponse:
        """GET the object (or a range). With ``max_bytes``, a larger answer raises ObjectTooLarge unread."""
        headers: dict[str, str] = {}
        if byte_range:
            headers["Range"] = byte_range
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        if if_modified_since is not None:
            headers["If-Modified-Since"] = (if_modified_since if isinstance(if_modified_since, str)
                                            else http_date(to_utc(if_modified_since)))
        params = {"versionId": version_id} if version_id else None
        response = self._request("GET", key, params=params, headers=headers, ok=(200, 206, 304), stream=True)
        try:
            length = response.headers.get("content-length")
            if max_bytes is not None and length is not None and length.isdigit() and int(length) > max_bytes:
                raise ObjectTooLarge(int(length), max_bytes)
            body = response.read(max_bytes + 1) if max_bytes is not None else response.read()
            if max_bytes is not None and len(body) > max_bytes:
                raise ObjectTooLarge(len(body), max_bytes)
        except ObjectTooLarge:
            response.close()  # the rest of the body is unread: this connection must not be reused
            raise
        finally:
            response.release_conn()
        return ObjectResponse(response.status, _lower_headers(response.headers), body)

    def iter_object(self, key: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's body in chunks (memory stays bounded for big objects)."""
        response = self._request("GET", key, stream=True)
        finished = False
        try:
            yield from response.stream(chunk_size)
            finished = True
        finally:
            if not finished:  # the caller stopped early: the unread rest must not reach another request
                response.close()
            response.release_conn()

    def put_object(self, key: str, body: bytes, *, content_type: str | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
        sent = dict(headers or {})
        if content_type:
            sent["Content-Type"] = content_type
        sent.setdefault("Content-MD5", _content_md5(body))  # OSS rejects a body damaged in transit
        response = self._request("PUT", key, headers=sent, body=body)
        return _etag(response.headers)

    def delete_object(self, key: str) -> None:
        self._request("DELETE", key, ok=(200, 204))

    # -- listing -----------------------------------------------------------------------------------------

    def list_objects_v2(self, prefix: str = "", *, continuation_token: str | None = None,
                        start_after: str | None = None, max_keys: int = 1000,
                        delimiter: str | None = None) -> ListPage:
        if not 1 <= max_keys <= 1000:
            raise ValueError("max_keys must be from 1 to 1000")
        params: dict[str, str | None] = {"list-type": "2", "max-keys": str(max_keys), "encoding-type": "url"}
        if prefix:
            params["prefix"] = prefix
        if continuation_token:
            params["continuation-token"] = continuation_token
        if start_after:
            params["start-after"] = start_after
        if delimiter:
            params["delimiter"] = delimiter
        response = self._request("GET", None, params=params)
        return _parse_list_page(response.data)

    def iter_objects(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            page = self.list_objects_v2(prefix, continuation_token=token, start_after=None if token else start_after)
            yield from page.objects
            if not page.is_truncated or not page.next_continuation_token:
                return
            token = page.next_continuation_token

    # -- multipart ---------------------------------------------------------------------------------------

    def initiate_multipart_upload(self, key: str, *, content_type: str | None = None) -> str:
        headers = {"Content-Type": content_type} if content_type else {}
        response = self._request("POST", key, params={"uploads": None}, headers=headers, idempotent=False)
        return _xml_text(_parse_xml(response.data), "UploadId")

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        if not 1 <= part_number <= 10000:
            raise ValueError("part_number must be from 1 to 10000")
        params = {"partNumber": str(part_number), "uploadId": upload_id}
        response = self._request("PUT", key, params=params, headers={"Content-MD5": _content_md5(data)}, body=data)
        return _etag(response.headers)

    def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> str:
        from xml.sax.saxutils import escape

        items = "".join(
            f"<Part><PartNumber>{int(number)}</PartNumber><ETag>&quot;{escape(etag.strip(chr(34)))}&quot;</ETag></Part>"
            for number, etag in sorted(parts)
        )
        body = f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()
        headers = {"Content-Type": "application/xml", "Content-MD5": _content_md5(body)}
        response = self._request("POST", key, params={"uploadId": upload_id}, headers=headers, body=body,
                                 idempotent=False)
        etag = _etag(response.headers)
        if not etag and response.data:
            etag = _xml_text(_parse_xml(response.data), "ETag").strip('"')
        return etag

    def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        self._request("DELETE", key, params={"uploadId": upload_id}, ok=(200, 204))

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str, int]]:
        """Every uploaded part as (number, etag, size), following the pages."""
        parts: list[tuple[int, str, int]] = []
        marker = ""
        while True:
            params: dict[str, str | None] = {"uploadId": upload_id, "max-parts": "1000"}
            if marker:
                params["part-number-marker"] = marker
            root = _parse_xml(self._request("GET", key, params=params).data)
            for part in root.iter("Part"):
                parts.append((int(_xml_text(part, "PartNumber")), _xml_text(part, "ETag").strip('"'),
                              int(_xml_text(part, "Size") or 0)))
            if _xml_text(root, "IsTruncated").lower() != "true":
                return parts
            next_marker = _xml_text(root, "NextPartNumberMarker")
            if not next_marker or next_marker == marker:
                return parts
            marker = next_marker

    # -- transport ---------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        key: str | None,
        *,
        params: Mapping[str, str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        ok: Sequence[int] = (200,),
        idempotent: bool = True,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        attempts = 1 + (self.max_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            signed = self.signer().sign_request(method, key, params=params, headers=headers)  # fresh date each try
            try:
                response = self._pool.request(
                    method, signed.url, body=body, headers=signed.headers, timeout=self._timeout,
                    retries=False, redirect=False, preload_content=not stream,
                )
            except _RETRYABLE_EXCEPTIONS as exc:
                if last:
                    raise OssError(0, "RequestError", f"OSS could not be reached: {type(exc).__name__}") from None
                self._backoff(attempt)
                continue
            if response.status in ok:
                return response
            error = _error_from(response, method, streamed=stream)
            if response.status >= 500 and not last:
                self._backoff(attempt)
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> None:
        ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2**attempt))
        self._sleep(random.uniform(ceiling / 2, ceiling))  # jitter, not security


# --- parsing ------------------------------------------------------------------------------------------------


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _etag(headers: Mapping[str, str]) -> str:
    return (headers.get("etag") or headers.get("ETag") or "").strip('"')


def _content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324 - the wire format


def _parse_http_date(value: str | None) -> datetime:
    from email.utils import parsedate_to_datetime

    if not value:
        return datetime.fromtimestamp(0, timezone.utc)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_iso_date(value: str) -> datetime:
    try:
        return parse_utc(value)
    except ValueError:
        return datetime.fromtimestamp(0, timezone.utc)


def _object_info(key: str, headers: Mapping[str, str]) -> ObjectInfo:
    lower = _lower_headers(headers)
    length = lower.get("content-length", "0")
    return ObjectInfo(
        key=key,
        size=int(length) if length.isdigit() else 0,
        etag=_etag(lower),
        last_modified=_parse_http_date(lower.get("last-modified")),
        content_type=lower.get("content-type"),
        headers=MappingProxyType(lower),
    )


def _parse_xml(data: bytes) -> Any:
    root = _xml_root(data)
    if root is None:
        raise OssError(502, "MalformedResponse", "OSS answered with malformed XML")
    return root


def _xml_root(data: bytes) -> Any:
    """Parsed XML, or None. OSS never sends a DTD: refusing one rules out entity-expansion tricks."""
    from xml.etree import ElementTree

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None
    try:
        return ElementTree.fromstring(data)  # noqa: S314 - no DTD reaches the parser (checked above)
    except ElementTree.ParseError:
        return None


def _xml_text(node: Any, tag: str) -> str:
    child = node.find(tag)
    return (child.text or "") if child is not None else ""


def _parse_list_page(data: bytes) -> ListPage:
    from urllib.parse import unquote

    root = _parse_xml(data)
    encoded = _xml_text(root, "EncodingType").lower() == "url"

    def decode(text: str) -> str:
        return unquote(text) if encoded else text

    objects = [
        ObjectInfo(
            key=decode(_xml_text(item, "Key")),
            size=int(_xml_text(item, "Size") or 0),
            etag=_xml_text(item, "ETag").strip('"'),
            last_modified=_parse_iso_date(_xml_text(item, "LastModified")),
            object_type=_xml_text(item, "Type"),
        )
        for item in root.findall("Contents")
    ]
    prefixes = [decode(_xml_text(item, "Prefix")) for item in root.findall("CommonPrefixes")]
    truncated = _xml_text(root, "IsTruncated").lower() == "true"
    token = decode(_xml_text(root, "NextContinuationToken")) or None  # encoded too under encoding-type=url
    return ListPage(objects=objects, common_prefixes=prefixes, next_continuation_token=token, is_truncated=truncated)


def _error_from(response: urllib3.BaseHTTPResponse, method: str, *, streamed: bool) -> OssError:
    headers = _lower_headers(response.headers)
    request_id = headers.get("x-oss-request-id")
    ec = headers.get("x-oss-ec")
    raw = b""
    if method == "HEAD" or response.status == 304:
        encoded = headers.get("x-oss-err", "")
        if encoded:
            try:
                raw = base64.b64decode(encoded, validate=False)
            except (ValueError, TypeError):
                raw = b""
    elif not streamed:
        raw = response.data[:MAX_ERROR_BODY_BYTES]
    else:
        try:
            raw = response.read(MAX_ERROR_BODY_BYTES)
        except _RETRYABLE_EXCEPTIONS:
            raw = b""
    response.release_conn()
    code, message = _default_error(response.status)
    if raw:
        root = _xml_root(raw)
        if root is not None:
            code = _xml_text(root, "Code") or code
            message = _xml_text(root, "Message") or message
            request_id = _xml_text(root, "RequestId") or request_id
            ec = _xml_text(root, "EC") or ec
    return OssError(response.status, code, message[:512], request_id, ec)


def _default_error(status: int) -> tuple[str, str]:
    return {
        403: ("AccessDenied", "access denied"),
        404: ("NoSuchKey", "the specified key does not exist"),
        416: ("InvalidRange", "the requested range is not satisfiable"),
    }.get(status, (f"HTTP{status}", f"OSS answered {status}"))
