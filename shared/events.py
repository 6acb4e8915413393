"""Typed views of the non-HTTP events Function Compute delivers: OSS trigger and timer.

Powertools-style: ``parse_oss_event(raw)`` and ``parse_timer_event(raw)`` take the handler's ``event``
(bytes holding JSON, or an already-decoded dict) and return frozen dataclasses; malformed input raises
``InvalidEvent`` (an ``AppError``) with a message that names the faulty field, never the payload.

OSS trigger (function-compute.md section 5): ``{"events": [record, ...]}``, several records per event.
A record that cannot be read does not hide the others: ``OssEvent.records`` holds the good ones and
``OssEvent.invalid`` the (index, reason) of the bad ones, so a handler can process all and fail after.

Key encoding: whether the cloud URL-encodes ``oss.object.key`` is unconfirmed; the local emulator sends
the raw key. ``OssObjectRecord.key`` is the key exactly as delivered and ``key_candidates()`` adds the
percent-/plus-decoded forms when they differ, so a handler can resolve the ambiguity against the store
(the first candidate that exists is the object) instead of guessing.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus

from shared import config
from shared import logging as log
from shared.errors import AppError, InvalidParameter
from shared.keys import is_unicode_text
from shared.numbers import ascii_int_or_none
from shared.validity import parse_utc

R = TypeVar("R")

__all__ = [
    "InvalidEvent",
    "OssEvent",
    "OssObjectRecord",
    "TimerEvent",
    "decode_event",
    "json_object",
    "parse_oss_event",
    "parse_timer_event",
]

# Event names a link-per-object handler acts on: a complete object now exists. Multipart steps
# (InitiateMultipartUpload, UploadPart, UploadPartCopy) fire under ObjectCreated:* but create nothing.
FINAL_CREATE_EVENTS = frozenset({
    "ObjectCreated:PutObject", "ObjectCreated:PostObject", "ObjectCreated:CopyObject",
    "ObjectCreated:CompleteMultipartUpload", "ObjectCreated:AppendObject", "ObjectCreated:PutSymlink",
})  # fmt: skip
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Event times a record can carry and still be computed with (the export looks days back from its tick; years
# 1 and 9999 overflow such arithmetic). The platform stamps events with the current time.
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_EVENT_TIME = datetime(9000, 1, 1, tzinfo=timezone.utc)


class InvalidEvent(InvalidParameter):
    code = "InvalidEvent"


def decode_event(raw: bytes | bytearray | str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """The event as a JSON object (a mapping is taken as is); InvalidEvent naming ``what`` otherwise."""
    return json_object(raw, f"the {what} event")


def json_object(raw: object, subject: str, error: type[AppError] = InvalidEvent) -> Mapping[str, Any]:
    """``raw`` (UTF-8 JSON text, as bytes or str; a mapping is taken as is) as a JSON object, else ``error``
    saying why, ``subject`` first: the one decoder of FC's events (HTTP, OSS, timer) and timer payloads."""
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{subject} is not valid JSON") from None
    if not isinstance(raw, str):
        raise error(f"{subject} must be JSON text")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise error(f"{subject} is not valid JSON") from None
    if not isinstance(value, dict):
        raise error(f"{subject} must be a JSON object")
    return value


def _unicode_text(value: object) -> bool:
    try:
        return is_unicode_text(value)
    except RecursionError:  # nested deeper than anything an event holds
        return False


# --- OSS trigger ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OssObjectRecord:
    """One record of an OSS-trigger event."""

    event_name: str  # "ObjectCreated:PutObject" (no "oss:" prefix, as FC delivers it)
    event_time: datetime
    event_time_raw: str
    bucket: str
    key: str  # as delivered (see the module docstring on encoding)
    size: int
    etag: str  # uppercase hex as delivered, quotes removed
    region: str = ""
    request_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def creates_object(self) -> bool:
        """True for events after which a complete object exists (not multipart steps, not removals)."""
        return self.event_name in FINAL_CREATE_EVENTS

    def key_candidates(self) -> list[str]:
        """The key as delivered, then its URL-decoded forms if they differ (most literal first)."""
        candidates = [self.key]
        try:
            if _PERCENT_ESCAPE.search(self.key):
                candidates.append(unquote(self.key, errors="strict"))
            if "+" in self.key:
                candidates.append(unquote_plus(self.key, errors="strict"))
        except UnicodeDecodeError:  # not valid percent-encoded UTF-8: it was never encoded
            pass
        unique: list[str] = []
        for candidate in candidates:
            if candidate and candidate not in unique:
                unique.append(candidate)
        return unique


@dataclass(frozen=True)
class OssEvent:
    records: list[OssObjectRecord]
    invalid: list[tuple[int, str]]  # (index in "events", reason)


def event_time(value: object, what: str) -> datetime:
    """An event's ISO 8601 time within [EARLIEST_EVENT_TIME, LATEST_EVENT_TIME]; ValueError naming ``what``."""
    try:
        moment = parse_utc(value)
    except ValueError:
        raise ValueError(f"{what} is not an ISO 8601 time") from None
    if not EARLIEST_EVENT_TIME <= moment <= LATEST_EVENT_TIME:
        raise ValueError(f"{what} is outside {EARLIEST_EVENT_TIME.year}-{LATEST_EVENT_TIME.year}")
    return moment


def _record(index: int, item: object) -> OssObjectRecord:
    if not isinstance(item, Mapping):
        raise ValueError("record is not an object")
    if not _unicode_text(item):
        raise ValueError("record holds a lone surrogate (not Unicode text)")
    oss = item.get("oss")
    if not isinstance(oss, Mapping):
        raise ValueError("oss is missing")
    bucket = oss.get("bucket")
    obj = oss.get("object")
    if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping):
        raise ValueError("oss.bucket or oss.object is missing")
    name = _required_text(item, "eventName", "eventName")
    key = _required_text(obj, "key", "oss.object.key")
    bucket_name = _required_text(bucket, "name", "oss.bucket.name")
    size = _object_size(obj.get("size", 0))
    etag = obj.get("eTag", "")
    if not isinstance(etag, str):
        raise ValueError("oss.object.eTag is not a string")
    time_raw = item.get("eventTime")
    moment = event_time(time_raw, "eventTime")
    response = item.get("responseElements")
    request_id = response.get("requestId", "") if isinstance(response, Mapping) else ""
    return OssObjectRecord(
        event_name=name.removeprefix("oss:"),
        event_time=moment,
        event_time_raw=str(time_raw),
        bucket=bucket_name,
        key=key,
        size=size,
        etag=etag.strip('"').upper(),
        region=str(item.get("region", "")),
        request_id=str(request_id or ""),
        raw=item,
    )


def _required_text(mapping: Mapping[str, Any], name: str, what: str) -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} is missing")
    return value


def _object_size(value: object) -> int:
    """``oss.object.size``: a non-negative integer, or its decimal ASCII digits."""
    size = ascii_int_or_none(value) if isinstance(value, str) else value
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("oss.object.size is not a non-negative integer")
    return size


def parse_oss_event(raw: bytes | bytearray | str | Mapping[str, Any]) -> OssEvent:
    """Parse ``{"events": [...]}``; InvalidEvent if the envelope is wrong, bad records listed in ``invalid``."""
    data = decode_event(raw, "OSS")
    items = data.get("events")
    if not isinstance(items, list):
        raise InvalidEvent("the OSS event has no 'events' list")
    records: list[OssObjectRecord] = []
    invalid: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        try:
            records.append(_record(index, item))
        except ValueError as error:
            invalid.append((index, str(error)))
    return OssEvent(records=records, invalid=invalid)


# --- timer trigger -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerEvent:
    trigger_time: datetime
    trigger_time_raw: str
    trigger_name: str
    payload: str  # the trigger's payload string, as configured (often JSON)

    def payload_json(self) -> dict[str, Any]:
        """The payload parsed as a JSON object ({} when empty); InvalidEvent otherwise."""
        if not self.payload.strip():
            return {}
        value = dict(json_object(self.payload, "the timer payload"))
        if not _unicode_text(value):
            raise InvalidEvent("the timer payload holds a lone surrogate (not Unicode text)")
        return value


def parse_timer_event(raw: bytes | bytearray | str | Mapping[str, Any]) -> TimerEvent:
    data = decode_event(raw, "timer")
    if not _unicode_text(data):
        raise InvalidEvent("the timer event holds a lone surrogate (not Unicode text)")
    name = data.get("triggerName")
    if not isinstance(name, str) or not name.strip():
        raise InvalidEvent("the timer event has no triggerName")
    time_raw = data.get("triggerTime")
    try:
        trigger_time = event_time(time_raw, "the timer event's triggerTime")
    except ValueError as error:
        raise InvalidEvent(str(error)) from None
    payload = data.get("payload", "")
    if payload is None:
        payload = ""
    if isinstance(payload, (dict, list)):  # a payload given as JSON rather than a string (local tools)
        payload = json.dumps(payload)
    if not isinstance(payload, str):
        raise InvalidEvent("the timer event's payload must be a string")
    return TimerEvent(trigger_time=trigger_time, trigger_time_raw=str(time_raw), trigger_name=name.strip(),
                      payload=payload)


def event_handler(function: str, build_runtime: Callable[[config.Settings], R]
                  ) -> Callable[[Callable[[bytes, Any, R], Any]], Callable[[bytes, Any], Any]]:
    """``handler(event, context)`` for an event (non-HTTP) function: settings and the runtime built from
    them once per container, then logging bound to each invocation (the HTTP functions' counterpart is
    ``shared.http.http_handler``)."""

    def decorate(process: Callable[[bytes, Any, R], Any]) -> Callable[[bytes, Any], Any]:
        built: list[R] = []
        lock = threading.Lock()

        @functools.wraps(process)
        def handler(event: bytes, context: Any) -> Any:
            if not built:
                with lock:
                    if not built:
                        settings = config.load(function)
                        log.configure(settings.log.level)
                        log.register_secrets(config.secret_values(settings))
                        built.append(build_runtime(settings))
            log.bind_invocation(function, context)
            return process(event, context, built[0])

        return handler

    return decorate
