"""Link records, the pure rules: where the record of an object's signed link is stored, what it holds, and when
a stored one may be handed out again instead of signing anew (on_upload; shared/uploads.py does the I/O).

A record is ``<LINKS_PREFIX><key>.json``: one JSON object naming the object version (bucket, key, ETag, size,
content type) and its link (URL, signing time, validity, whether it was clamped and why).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.validity import format_utc, parse_utc

if TYPE_CHECKING:
    from shared.signing import PresignedUrl
    from shared.storage import ObjectInfo

__all__ = ["MAX_KEY_BYTES", "REUSE_MIN_REMAINING_SHARE", "link_record", "link_record_key", "record_body",
           "reusable_record"]

MAX_KEY_BYTES = 1023  # OSS object keys are 1-1023 bytes of UTF-8
# A stored link record is reused while at least this share of its validity remains.
REUSE_MIN_REMAINING_SHARE = 0.5


def link_record_key(links_prefix: str, key: str) -> str:
    """`<links>/<key>.json`; a key too long for that gets `<links>/_long/<sha256 of key>.json` (the record
    names the key), so every object gets a record instead of failing on every retry."""
    record_key = f"{links_prefix}{key}.json"
    if len(record_key.encode("utf-8")) <= MAX_KEY_BYTES:
        return record_key
    return f"{links_prefix}_long/{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"


def reusable_record(stored: bytes, etag: str, now: datetime) -> dict[str, Any] | None:
    """The stored record if it is for this object version (``etag``) and keeps at least
    REUSE_MIN_REMAINING_SHARE of its validity at ``now``; None otherwise (then it is signed and written anew)."""
    try:
        record: dict[str, Any] = json.loads(stored)  # not an object: .get raises AttributeError below
        if record.get("etag", "").upper() != etag.upper():
            return None
        remaining = (parse_utc(record["expires_at"]) - now).total_seconds()
        if remaining < REUSE_MIN_REMAINING_SHARE * int(record["expires_in"]):
            return None
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None  # unreadable: overwrite it
    return record


def link_record(*, bucket: str, key: str, info: ObjectInfo, presigned: PresignedUrl, signature_version: str,
                event_name: str, event_time: datetime, idempotency_key: str, record_key: str) -> dict[str, Any]:
    """The record of ``presigned``, the link to the object version ``info`` that ``event_name`` announced."""
    return {
        "bucket": bucket,
        "key": key,
        "url": presigned.url,
        "expires_at": format_utc(presigned.expires_at),
        "expires_in": presigned.expires_in,
        "clamped": presigned.clamped,
        "clamp_reason": presigned.clamp_reason,
        "signed_at": format_utc(presigned.validity.signed_at),
        "signature_version": signature_version,
        "size": info.size,
        "etag": info.etag.upper(),
        "content_type": info.content_type,
        "last_modified": format_utc(info.last_modified),
        "event_name": event_name,
        "event_time": format_utc(event_time),
        "idempotency_key": idempotency_key,
        "link_record": record_key,
    }


def record_body(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
