"""What OSS answers, as data: object info, list pages, object bodies, errors (parsed from headers and XML).

The storage client (shared/storage.py) sends the requests; this module reads what comes back. ETags are
returned without their surrounding quotes (as oss2 does); an error answer becomes ``OssError(status, code,
message, request_id)``, from the error XML or, for HEAD (no body), the base64 ``x-oss-err`` header.
``to_app_error`` maps an ``OssError`` to the answer a caller should see (404 / 403 / 502).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, NamedTuple

import urllib3

from shared.errors import AppError, Forbidden, NotFound, UpstreamError
from shared.http import register_error_answer
from shared.validity import parse_utc

MAX_ERROR_BODY_BYTES = 64 * 1024
# Connection-level failures worth another attempt (refused, reset, timed out, broken response).
RETRYABLE_EXCEPTIONS = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
_EMPTY: Mapping[str, str] = MappingProxyType({})


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


# --- parsing ------------------------------------------------------------------------------------------------


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def etag_of(headers: Mapping[str, str]) -> str:
    return (headers.get("etag") or headers.get("ETag") or "").strip('"')


def content_md5(body: bytes) -> str:
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


def object_info(key: str, headers: Mapping[str, str]) -> ObjectInfo:
    lower = lower_headers(headers)
    length = lower.get("content-length", "0")
    return ObjectInfo(
        key=key,
        size=int(length) if length.isdigit() else 0,
        etag=etag_of(lower),
        last_modified=_parse_http_date(lower.get("last-modified")),
        content_type=lower.get("content-type"),
        headers=MappingProxyType(lower),
    )


def parse_xml(data: bytes) -> Any:
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


def xml_text(node: Any, tag: str) -> str:
    child = node.find(tag)
    return (child.text or "") if child is not None else ""


def parse_list_page(data: bytes) -> ListPage:
    from urllib.parse import unquote

    root = parse_xml(data)
    encoded = xml_text(root, "EncodingType").lower() == "url"

    def decode(text: str) -> str:
        return unquote(text) if encoded else text

    objects = [
        ObjectInfo(
            key=decode(xml_text(item, "Key")),
            size=int(xml_text(item, "Size") or 0),
            etag=xml_text(item, "ETag").strip('"'),
            last_modified=_parse_iso_date(xml_text(item, "LastModified")),
            object_type=xml_text(item, "Type"),
        )
        for item in root.findall("Contents")
    ]
    prefixes = [decode(xml_text(item, "Prefix")) for item in root.findall("CommonPrefixes")]
    truncated = xml_text(root, "IsTruncated").lower() == "true"
    token = decode(xml_text(root, "NextContinuationToken")) or None  # encoded too under encoding-type=url
    return ListPage(objects=objects, common_prefixes=prefixes, next_continuation_token=token, is_truncated=truncated)


def error_from(response: urllib3.BaseHTTPResponse, method: str, *, streamed: bool) -> OssError:
    headers = lower_headers(response.headers)
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
        except RETRYABLE_EXCEPTIONS:
            raw = b""
    response.release_conn()
    code, message = _default_error(response.status)
    if raw:
        root = _xml_root(raw)
        if root is not None:
            code = xml_text(root, "Code") or code
            message = xml_text(root, "Message") or message
            request_id = xml_text(root, "RequestId") or request_id
            ec = xml_text(root, "EC") or ec
    return OssError(response.status, code, message[:512], request_id, ec)


def _default_error(status: int) -> tuple[str, str]:
    return {
        403: ("AccessDenied", "access denied"),
        404: ("NoSuchKey", "the specified key does not exist"),
        416: ("InvalidRange", "the requested range is not satisfiable"),
    }.get(status, (f"HTTP{status}", f"OSS answered {status}"))


# What a caller is told when an OSS error reaches the HTTP layer uncaught (never OSS's own message).
register_error_answer(OssError, to_app_error)
