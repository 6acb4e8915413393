"""Request rules shared by the object operations: keys, metadata headers, digests, traffic limits,
conditional requests and byte ranges (pure functions, no I/O)."""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import unquote

from local.oss.errors import OssError, invalid_argument
from local.oss.storage import ObjectRecord

MAX_OBJECT_SIZE = 5 * 1024**3
MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10000
TRAFFIC_LIMIT_RANGE = (819200, 838860800)
STORED_HEADERS = ("content-disposition", "cache-control", "content-encoding", "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}

def validate_key(key: str) -> None:
    if len(key.encode()) > 1023 or key.startswith(("/", "\\")):
        raise OssError(400, "InvalidObjectName", Key=key)


def metadata_from(headers: Mapping[str, Sequence[str]]) -> dict[str, str]:
    return {name: ",".join(values) for name, values in headers.items()
            if name.startswith("x-oss-meta-") or name in STORED_HEADERS}


def header_case(name: str) -> str:
    if name.startswith("x-oss-"):
        return name
    return "-".join(part.capitalize() for part in name.split("-"))


def capped(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise OssError(400, "EntityTooLarge")
        yield chunk


def throttled(chunks: Iterator[bytes], bytes_per_second: int) -> Iterator[bytes]:
    """Pass chunks through no faster than ``bytes_per_second`` on average (x-oss-traffic-limit on uploads)."""
    started = time.monotonic()
    total = 0
    for chunk in chunks:
        yield chunk
        total += len(chunk)
        ahead = total / bytes_per_second - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def read_span(source: BinaryIO, count: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """``count`` bytes from the current position of ``source``, in chunks."""
    while count > 0:
        data = source.read(min(chunk, count))
        if not data:
            raise OssError(500, "InternalError", "The stored object is shorter than its index entry.")
        count -= len(data)
        yield data


def decode_content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise OssError(400, "InvalidDigest", **{"Content-MD5": value}) from None
    if len(digest) != 16:
        raise OssError(400, "InvalidDigest", **{"Content-MD5": value})
    return digest


def check_content_md5(value: str | None, actual: bytes) -> None:
    expected = decode_content_md5(value)
    if expected is not None and expected != actual:
        raise digest_mismatch(value or "", actual)


def digest_mismatch(expected: str, actual: bytes) -> OssError:
    # OSS answers a Content-MD5 that does not match the body with InvalidDigest (PutObject API reference,
    # error codes), where S3 says BadDigest.
    return OssError(400, "InvalidDigest", ExpectedMD5=expected, CalculatedMD5=base64.b64encode(actual).decode())


def check_traffic_limit(value: str | None) -> int | None:
    """The x-oss-traffic-limit in bits per second (validated), or None."""
    if value is None:
        return None
    low, high = TRAFFIC_LIMIT_RANGE
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if not low <= limit <= high:
        raise invalid_argument(f"x-oss-traffic-limit must be between {low} and {high}.",
                               ArgumentName="x-oss-traffic-limit", ArgumentValue=value)
    return limit


def part_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise invalid_argument(f"Part number must be an integer between 1 and {MAX_PART_NUMBER}.",
                               ArgumentName="partNumber", ArgumentValue=value)
    return number


def parse_copy_source(value: str) -> tuple[str, str]:
    source = unquote(value.split("?", 1)[0])
    bucket, sep, key = source.lstrip("/").partition("/")
    if not bucket or not sep or not key:
        raise invalid_argument("Copy Source must mention the source bucket and key: /sourcebucket/sourcekey.",
                               ArgumentName="x-oss-copy-source")
    return bucket, key


def _http_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().strip('"').upper() for c in header.split(",")]
    return "*" in candidates or etag.upper() in candidates


def check_conditions(record: ObjectRecord, conditions: Mapping[str, str | None]) -> bool:
    """Evaluate If-* headers (RFC 7232 order). Returns True for 304 Not Modified; raises 412.

    The same holds for CopyObject / UploadPartCopy's x-oss-copy-source-if-*: an unmet if-none-match or
    if-modified-since is 304, only if-match and if-unmodified-since failures are 412 (CopyObject reference)."""
    modified = int(record.last_modified)
    if_match = conditions.get("if-match")
    if_none_match = conditions.get("if-none-match")
    if if_match is not None and not _etag_matches(if_match, record.etag):
        raise OssError(412, "PreconditionFailed", Condition="If-Match")
    if if_match is None:
        since = _http_time(conditions.get("if-unmodified-since"))
        if since is not None and modified > since:
            raise OssError(412, "PreconditionFailed", Condition="If-Unmodified-Since")
    if if_none_match is not None and _etag_matches(if_none_match, record.etag):
        return True
    if if_none_match is None:
        since = _http_time(conditions.get("if-modified-since"))
        if since is not None and modified <= since:
            return True
    return False


def copy_conditions(headers_of: Callable[[str], str | None]) -> dict[str, str | None]:
    return {name: headers_of(f"x-oss-copy-source-{name}")
            for name in ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")}


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive, None to serve the whole object; 416 when unsatisfiable.

    Follows OSS's standard range behaviour: an end past the object is clamped; a malformed or
    multi-range header is ignored (whole object, 200).
    """
    if not value:
        return None
    match = _RANGE.match(value.strip())
    if not match or (match.group(1) == "" and match.group(2) == ""):
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise OssError(416, "InvalidRange", ActualObjectSize=str(size), RangeRequested=value)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start:
        return None
    if start >= size:
        raise OssError(416, "InvalidRange", ActualObjectSize=str(size), RangeRequested=value)
    return start, min(end, size - 1)

