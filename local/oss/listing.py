"""ListObjects (v1) and ListObjectsV2 over the SQL index.

Each page is a handful of index seeks: keys come from ``key > ? ORDER BY key LIMIT ?`` and a common
prefix is skipped in one jump by seeking to the successor of ``prefix + ... + delimiter``, so the cost
of a page does not grow with the size of the bucket.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote
from xml.sax.saxutils import escape

from local.oss.errors import invalid_argument
from local.oss.storage import ListedObject, Storage
from local.oss.xmlutil import element, iso8601

DEFAULT_MAX_KEYS = 100
MAX_KEYS_LIMIT = 1000


@dataclass
class ListPage:
    contents: list[ListedObject] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_position: str = ""  # last key or common prefix returned, when truncated


def successor(text: str) -> str:
    """The smallest string greater than every string that starts with ``text``."""
    last = ord(text[-1])
    if last >= 0x10FFFF:
        return text + "\U0010ffff"
    return text[:-1] + chr(last + 1)


def list_page(storage: Storage, bucket: str, *, prefix: str, delimiter: str, after: str,
              max_keys: int) -> ListPage:
    page = ListPage()
    lower = prefix
    upper = successor(prefix) if prefix else None
    if delimiter and after.startswith(prefix):
        # A marker inside a common prefix already reported: skip the whole prefix.
        rolled = common_prefix(after, prefix, delimiter)
        if rolled is not None:
            lower = max(lower, successor(rolled))
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


def list_objects_xml(storage: Storage, bucket: str, query: Mapping[str, str], owner_id: str) -> bytes:
    """Run ListObjects or ListObjectsV2 (``list-type=2``) and render its XML answer."""
    v2 = query.get("list-type") == "2"
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    encoding = query.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise invalid_argument("Argument encoding-type must be url.", ArgumentName="encoding-type")
    max_keys = parse_max_keys(query.get("max-keys"))

    def enc(text: str) -> str:
        return quote(text, safe="") if encoding == "url" else text

    if v2:
        token = query.get("continuation-token")
        start_after = query.get("start-after", "")
        after = decode_token(token) if token else start_after
        fetch_owner = query.get("fetch-owner", "false").lower() == "true"
    else:
        after = query.get("marker", "")
        fetch_owner = True
    page = list_page(storage, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys)

    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>', element("Name", bucket),
           element("Prefix", enc(prefix))]
    if v2:
        if "start-after" in query:
            out.append(element("StartAfter", enc(start_after)))
        if token:
            out.append(element("ContinuationToken", token))
    else:
        out.append(element("Marker", enc(after)))
    out += [element("MaxKeys", str(max_keys)), element("Delimiter", enc(delimiter)),
            element("IsTruncated", "true" if page.truncated else "false")]
    if encoding:
        out.append(element("EncodingType", encoding))
    if page.truncated:
        if v2:
            # ListObjectsV2 reference: with encoding-type=url, Delimiter, StartAfter, Prefix,
            # NextContinuationToken and Key are URL-encoded.
            out.append(element("NextContinuationToken", enc(encode_token(page.next_position))))
        else:
            out.append(element("NextMarker", enc(page.next_position)))
    if v2:
        out.append(element("KeyCount", str(len(page.contents) + len(page.common_prefixes))))
    owner = (f"<Owner>{element('ID', owner_id)}{element('DisplayName', owner_id)}</Owner>"
             if fetch_owner else "")
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
