"""ListObjects (v1), ListObjectsV2 and ListMultipartUploads over the SQL index.

Each page is a handful of index seeks: keys come from ``key > ? ORDER BY key LIMIT ?`` and a common
prefix is skipped in one jump by seeking to the successor of ``prefix + ... + delimiter``, so the cost
of a page does not grow with the size of the bucket.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote
from xml.sax.saxutils import escape

from local.oss.errors import invalid_argument
from local.oss.storage import ListedObject, Storage, UploadRecord
from local.oss.xmlutil import element, iso8601

DEFAULT_MAX_KEYS = 100
MAX_KEYS_LIMIT = 1000


@dataclass
class ListPage:
    contents: list[ListedObject] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_position: str = ""  # last key or common prefix returned, when truncated


@dataclass
class UploadsPage:
    uploads: list[UploadRecord] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_key: str = ""  # NextKeyMarker and NextUploadIdMarker, when truncated
    next_upload_id: str = ""


def successor(text: str) -> str:
    """The smallest string greater than every string that starts with ``text``."""
    last = ord(text[-1])
    if last >= 0x10FFFF:
        return text + "\U0010ffff"
    return text[:-1] + chr(last + 1)


def list_page(storage: Storage, bucket: str, *, prefix: str, delimiter: str, after: str,
              max_keys: int) -> ListPage:
    page = ListPage()
    lower = _lowest_key(prefix, delimiter, after)
    upper = successor(prefix) if prefix else None
    count = 0
    while count < max_keys:
        progressed = False
        jumped = False
        for record in storage.scan(bucket, after, lower, upper, min(max_keys - count + 1, MAX_KEYS_LIMIT + 1)):
            progressed = True
            rolled = common_prefix(record.key, prefix, delimiter) if delimiter else None
            if rolled is not None:
                page.common_prefixes.append(rolled)
                page.next_position = rolled
                lower = successor(rolled)
                count += 1
                jumped = True
                break
            page.contents.append(record)
            page.next_position = record.key
            after = record.key
            count += 1
            if count >= max_keys:
                break
        if not progressed or (not jumped and count < max_keys):
            # Exhausted the range (a short batch without a jump means no more rows).
            return page
    page.truncated = next(storage.scan(bucket, after, lower, upper, 1), None) is not None
    if not page.truncated:
        page.next_position = ""
    return page


def _lowest_key(prefix: str, delimiter: str, marker: str) -> str:
    """Where a page's index range starts: at the prefix, or past the whole common prefix the marker is
    inside (that prefix was already reported)."""
    lower = prefix
    if delimiter and marker.startswith(prefix):
        rolled = common_prefix(marker, prefix, delimiter)
        if rolled is not None:
            lower = max(lower, successor(rolled))
    return lower


def uploads_page(storage: Storage, bucket: str, *, prefix: str, delimiter: str, key_marker: str,
                 upload_id_marker: str, max_uploads: int) -> UploadsPage:
    """max_uploads counts uploads and common prefixes together; a common prefix is skipped in one jump."""
    page = UploadsPage()
    lower, upper = _lowest_key(prefix, delimiter, key_marker), (successor(prefix) if prefix else None)
    after_key, after_id = key_marker, (upload_id_marker or None)
    while True:
        wanted = max_uploads - len(page.uploads) - len(page.common_prefixes)
        batch = storage.list_uploads(bucket, lower=lower, upper=upper, after_key=after_key,
                                     after_upload_id=after_id, limit=wanted + 1)
        if wanted == 0:
            page.truncated = bool(batch)
            break
        jumped = False
        for upload in batch[:wanted]:
            rolled = common_prefix(upload.key, prefix, delimiter) if delimiter else None
            if rolled is not None:
                page.common_prefixes.append(rolled)
                page.next_key, page.next_upload_id = rolled, ""
                lower = successor(rolled)
                jumped = True
                break
            page.uploads.append(upload)
            page.next_key, page.next_upload_id = upload.key, upload.upload_id
            after_key, after_id = upload.key, upload.upload_id
        if not jumped and len(batch) <= wanted:
            break
    if not page.truncated:
        page.next_key, page.next_upload_id = "", ""
    return page


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    index = key.find(delimiter, len(prefix))
    if index < 0:
        return None
    return key[: index + len(delimiter)]


def parse_max_keys(value: str | None) -> int:
    return parse_limit(value, "max-keys", default=DEFAULT_MAX_KEYS)


def parse_limit(value: str | None, name: str, *, default: int) -> int:
    """A page size (max-keys, max-uploads): ASCII digits, 1..1000."""
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_KEYS_LIMIT:
        raise invalid_argument(f"Argument {name} must be an integer between 1 and {MAX_KEYS_LIMIT}.",
                               ArgumentName=name, ArgumentValue=value)
    return int(value)


def encode_token(position: str) -> str:
    # Standard base64 ("+", "/", "=") like OSS's opaque tokens: under encoding-type=url the token is
    # URL-encoded in the answer, so a client that forgets to decode it sends back a token that fails.
    return base64.b64encode(position.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_argument("The continuation token provided is incorrect.",
                               ArgumentName="continuation-token") from None


def _encoding_type(query: Mapping[str, str]) -> str:
    encoding = query.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise invalid_argument("Argument encoding-type must be url.", ArgumentName="encoding-type")
    return encoding


def _encoder(encoding: str) -> Callable[[str], str]:
    """How names appear in the answer: URL-encoded when the request asked for encoding-type=url."""
    if encoding == "url":
        return lambda text: quote(text, safe="")
    return lambda text: text


@dataclass(frozen=True)
class _ListRequest:
    """ListObjects' (v1) or ListObjectsV2's parameters."""

    v2: bool
    prefix: str
    delimiter: str
    encoding: str
    max_keys: int
    after: str  # marker (v1); the decoded continuation token, else start-after (v2)
    token: str | None  # continuation-token as sent (v2)
    fetch_owner: bool

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> _ListRequest:
        encoding = _encoding_type(query)
        max_keys = parse_max_keys(query.get("max-keys"))
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        if query.get("list-type") != "2":
            return cls(False, prefix, delimiter, encoding, max_keys, query.get("marker", ""), None, True)
        token = query.get("continuation-token")
        after = decode_token(token) if token else query.get("start-after", "")
        fetch_owner = query.get("fetch-owner", "false").lower() == "true"
        return cls(True, prefix, delimiter, encoding, max_keys, after, token, fetch_owner)


def list_objects_xml(storage: Storage, bucket: str, query: Mapping[str, str], owner_id: str) -> bytes:
    """Run ListObjects or ListObjectsV2 (``list-type=2``) and render its XML answer."""
    request = _ListRequest.parse(query)
    page = list_page(storage, bucket, prefix=request.prefix, delimiter=request.delimiter, after=request.after,
                     max_keys=request.max_keys)
    enc = _encoder(request.encoding)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>', element("Name", bucket),
           element("Prefix", enc(request.prefix))]
    out += _list_markers(request, query, page, enc)
    owner = (f"<Owner>{element('ID', owner_id)}{element('DisplayName', owner_id)}</Owner>"
             if request.fetch_owner else "")
    for record in page.contents:
        # Only the key needs escaping: the other fields are digits, hex and constants.
        out.append(
            f"<Contents><Key>{escape(enc(record.key))}</Key>"
            f"<LastModified>{iso8601(record.last_modified)}</LastModified>"
            f'<ETag>"{record.etag}"</ETag><Type>{record.object_type}</Type><Size>{record.size}</Size>'
            f"<StorageClass>Standard</StorageClass>{owner}</Contents>"
        )
    for common in page.common_prefixes:
        out.append(f"<CommonPrefixes>{element('Prefix', enc(common))}</CommonPrefixes>")
    out.append("</ListBucketResult>")
    return "".join(out).encode()


def _list_markers(request: _ListRequest, query: Mapping[str, str], page: ListPage,
                  enc: Callable[[str], str]) -> list[str]:
    """The elements between Prefix and the first Contents: where the page starts, its size, where the next
    one starts."""
    out = []
    if request.v2:
        if "start-after" in query:
            out.append(element("StartAfter", enc(query.get("start-after", ""))))
        if request.token:
            out.append(element("ContinuationToken", request.token))
    else:
        out.append(element("Marker", enc(request.after)))
    out += [element("MaxKeys", str(request.max_keys)), element("Delimiter", enc(request.delimiter)),
            element("IsTruncated", "true" if page.truncated else "false")]
    if request.encoding:
        out.append(element("EncodingType", request.encoding))
    if page.truncated:
        if request.v2:
            # ListObjectsV2 reference: with encoding-type=url, Delimiter, StartAfter, Prefix,
            # NextContinuationToken and Key are URL-encoded.
            out.append(element("NextContinuationToken", enc(encode_token(page.next_position))))
        else:
            out.append(element("NextMarker", enc(page.next_position)))
    if request.v2:
        out.append(element("KeyCount", str(len(page.contents) + len(page.common_prefixes))))
    return out


def list_uploads_xml(storage: Storage, bucket: str, query: Mapping[str, str]) -> bytes:
    """ListMultipartUploads: prefix and markers bound the index query, delimiter rolls keys up into
    CommonPrefixes, max-uploads (1..1000, default 1000) counts uploads and prefixes together."""
    encoding = _encoding_type(query)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    key_marker = query.get("key-marker", "")
    # upload-id-marker only counts together with key-marker (ListMultipartUploads reference)
    upload_id_marker = query.get("upload-id-marker", "") if key_marker else ""
    max_uploads = parse_limit(query.get("max-uploads"), "max-uploads", default=MAX_KEYS_LIMIT)
    page = uploads_page(storage, bucket, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
                        upload_id_marker=upload_id_marker, max_uploads=max_uploads)
    enc = _encoder(encoding)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>', element("Bucket", bucket),
           element("KeyMarker", enc(key_marker)), element("UploadIdMarker", upload_id_marker),
           element("NextKeyMarker", enc(page.next_key)), element("NextUploadIdMarker", page.next_upload_id),
           element("Delimiter", enc(delimiter)), element("Prefix", enc(prefix)),
           element("MaxUploads", str(max_uploads)), element("IsTruncated", "true" if page.truncated else "false")]
    if encoding:
        out.append(element("EncodingType", "url"))
    for upload in page.uploads:
        out.append(f"<Upload>{element('Key', enc(upload.key))}{element('UploadId', upload.upload_id)}"
                   f"{element('StorageClass', 'Standard')}"
                   f"{element('Initiated', iso8601(upload.initiated))}</Upload>")
    for common in page.common_prefixes:
        out.append(f"<CommonPrefixes>{element('Prefix', enc(common))}</CommonPrefixes>")
    out.append("</ListMultipartUploadsResult>")
    return "".join(out).encode()
