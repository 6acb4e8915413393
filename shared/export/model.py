"""Bulk export, the pure parts: options, names, key filters, rows and formats, part buffering.

No network here: shared/export/job.py drives OSS (listing, multipart upload, checkpoints) and
shared/export/invoke.py the self re-invocation; this module decides what goes into the file
(shared/export/checkpoint.py: what a checkpoint holds).

File layout: rows (key, url, size, etag, last_modified, expires_at) sorted by key across all prefixes
(prefixes are de-overlapped and listed in order), CSV (RFC 4180, header line, CRLF) or JSON lines.
Every URL of one export is signed with the same signing time and validity, both fixed when the export
starts and kept in the checkpoint, so a resumed or continued export writes exactly the bytes a single
run would have written (given the same signing credentials).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

from shared.errors import InvalidParameter, UpstreamError
from shared.validity import Version, format_utc, parse_utc

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.signing import Credentials, Signer

__all__ = [
    "CHECKPOINT_FOLDER",
    "COLUMNS",
    "ExportFailed",
    "ExportOptions",
    "KeyFilter",
    "PartBuffer",
    "Row",
    "checkpoint_key",
    "export_id",
    "format_rows",
    "normalise_prefixes",
    "parse_options",
    "signing_time",
]

COLUMNS = ("key", "url", "size", "etag", "last_modified", "expires_at")
CHECKPOINT_FOLDER = ".checkpoints/"
MIN_PART_SIZE = 100 * 1024  # OSS: every part but the last is at least 100 KiB
MAX_PART_SIZE = 64 * 1024 * 1024  # memory bound: one part is buffered in memory
DEFAULT_PART_SIZE = 8 * 1024 * 1024
# The signing time is the trigger time when the export starts close to it (so exports of the same
# schedule tick are reproducible), else the start time (a late retry must not hand out URLs that die early).
SIGNING_TIME_WINDOW = timedelta(minutes=15)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OPTION_NAMES = frozenset({"prefixes", "suffixes", "modified_since", "expires", "https", "scheme", "domain",
                           "version", "format", "output_prefix", "part_size", "notify"})


class ExportFailed(UpstreamError):
    """An export that cannot go on now (continuation refused, webhook down, too many hops): the platform retries."""

    code = "ExportFailed"


# --- options --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    prefixes: tuple[str, ...]  # de-overlapped, sorted; ("",) for the whole bucket
    suffixes: tuple[str, ...]
    modified_since: datetime | None
    expires: int
    scheme: str  # "" means the configured default
    domain: str  # default | custom | accelerate
    version: str  # v4 | v1
    format: str  # csv | jsonl
    output_prefix: str  # inside EXPORT_PREFIX, ends with "/"
    part_size: int
    notify: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefixes"] = list(self.prefixes)
        data["suffixes"] = list(self.suffixes)
        data["modified_since"] = format_utc(self.modified_since) if self.modified_since else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportOptions:
        values = dict(data)
        values["prefixes"] = tuple(values["prefixes"])
        values["suffixes"] = tuple(values["suffixes"])
        since = values.get("modified_since")
        values["modified_since"] = parse_utc(since) if since else None
        return cls(**values)

    @property
    def extension(self) -> str:
        return "csv" if self.format == "csv" else "jsonl"

    @property
    def content_type(self) -> str:
        return "text/csv; charset=utf-8" if self.format == "csv" else "application/x-ndjson; charset=utf-8"


def normalise_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Sorted, without prefixes covered by a shorter one ("a/" covers "a/b/"): no object is listed twice."""
    unique = sorted(set(prefixes))
    if not unique or "" in unique:
        return ("",)
    kept: list[str] = []
    for prefix in unique:  # sorted: a covering prefix comes right before what it covers
        if kept and prefix.startswith(kept[-1]):
            continue
        kept.append(prefix)
    return tuple(kept)


def parse_options(payload: Mapping[str, Any], settings: Any, *, trigger_name: str) -> ExportOptions:
    """The timer payload over the EXPORT_* defaults; InvalidParameter naming the bad field."""
    unknown = sorted(set(payload) - _OPTION_NAMES)
    if unknown:
        raise InvalidParameter(f"unknown export option(s): {', '.join(unknown)}; accepted: "
                               f"{', '.join(sorted(_OPTION_NAMES))}")
    export = settings.export
    prefixes = _string_list(payload, "prefixes", export.prefixes)
    for prefix in prefixes:
        if prefix.startswith("/") or _CONTROL.search(prefix) or len(prefix.encode()) > 1023:
            raise InvalidParameter("prefixes: each must be a key prefix not starting with '/'")
    suffixes = _string_list(payload, "suffixes", export.suffixes)
    since = payload.get("modified_since")
    modified_since = None
    if since not in (None, ""):
        try:
            modified_since = parse_utc(since)
        except ValueError:
            raise InvalidParameter("modified_since must be an ISO 8601 time such as 2026-01-01T00:00:00Z") from None
    expires = payload.get("expires", export.expires)
    if not isinstance(expires, int) or isinstance(expires, bool) or not 1 <= expires <= 604800:
        raise InvalidParameter("expires must be an integer number of seconds from 1 to 604800")
    scheme = _scheme(payload)
    domain = _choice(payload, "domain", ("default", "custom", "accelerate"), "default")
    if domain == "custom" and settings.oss.custom_domain is None:
        raise InvalidParameter("domain 'custom' needs OSS_CUSTOM_DOMAIN to be configured")
    version = _choice(payload, "version", ("v4", "v1"), settings.urls.signature_version)
    fmt = _choice(payload, "format", ("csv", "jsonl"), export.format)
    part_size = payload.get("part_size", getattr(export, "part_size", DEFAULT_PART_SIZE))
    if not isinstance(part_size, int) or isinstance(part_size, bool) or not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise InvalidParameter(f"part_size must be an integer from {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes")
    notify = payload.get("notify", True)
    if not isinstance(notify, bool):
        raise InvalidParameter("notify must be true or false")
    return ExportOptions(
        prefixes=normalise_prefixes(prefixes), suffixes=tuple(suffixes), modified_since=modified_since,
        expires=expires, scheme=scheme, domain=domain, version=version, format=fmt,
        output_prefix=_output_prefix(payload, trigger_name), part_size=part_size, notify=notify,
    )


def _output_prefix(payload: Mapping[str, Any], trigger_name: str) -> str:
    output_prefix = payload.get("output_prefix")
    if output_prefix in (None, ""):
        output_prefix = safe_name(trigger_name) + "/"
    if (not isinstance(output_prefix, str) or output_prefix.startswith("/") or ".." in output_prefix.split("/")
            or _CONTROL.search(output_prefix) or output_prefix.startswith(CHECKPOINT_FOLDER)):
        raise InvalidParameter("output_prefix must be a relative folder inside EXPORT_PREFIX, without '..'")
    return output_prefix if output_prefix.endswith("/") else output_prefix + "/"


def _string_list(payload: Mapping[str, Any], name: str, default: Sequence[str]) -> list[str]:
    value = payload.get(name)
    if value is None:
        return list(default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParameter(f"{name} must be a list of strings")
    return [item for item in value if item]


def _choice(payload: Mapping[str, Any], name: str, options: tuple[str, ...], default: str) -> str:
    value = payload.get(name, default)
    if not isinstance(value, str) or value.lower() not in options:
        raise InvalidParameter(f"{name} must be one of {', '.join(options)}")
    return value.lower()


def _scheme(payload: Mapping[str, Any]) -> str:
    if "https" in payload:
        if not isinstance(payload["https"], bool):
            raise InvalidParameter("https must be true or false")
        if "scheme" in payload and payload["scheme"] != ("https" if payload["https"] else "http"):
            raise InvalidParameter("https and scheme disagree")
        return "https" if payload["https"] else "http"
    scheme = payload.get("scheme", "")
    if scheme not in ("", "https", "http"):
        raise InvalidParameter("scheme must be https or http")
    return scheme


def safe_name(text: str) -> str:
    """A file-name-safe slug; a short hash is added when characters had to be replaced (no collisions)."""
    slug = _SAFE_NAME.sub("-", text).strip("-.")[:64] or "export"
    if slug != text:
        slug += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return slug


def export_id(trigger_name: str, trigger_time: datetime) -> str:
    """One export per (trigger, tick): the idempotency key of a timer event."""
    return f"{safe_name(trigger_name)}-{_compact(trigger_time)}"


def checkpoint_key(export_prefix: str, export: str) -> str:
    return f"{export_prefix}{CHECKPOINT_FOLDER}{export}.json"


def output_key(export_prefix: str, options: ExportOptions, trigger_time: datetime) -> str:
    return f"{export_prefix}{options.output_prefix}{_compact(trigger_time)}.{options.extension}"


def signing_time(trigger_time: datetime, now: datetime) -> datetime:
    if now - SIGNING_TIME_WINDOW <= trigger_time <= now + timedelta(seconds=60):
        return trigger_time.replace(microsecond=0)
    return now.replace(microsecond=0)


def _compact(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# --- filters ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyFilter:
    """Which objects qualify: prefixes, suffixes, size bounds, modified-since, and never the excluded
    prefixes (the functions' own output: link records and exports)."""

    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    min_size: int = 0
    max_size: int | None = None
    modified_since: datetime | None = None
    excluded: tuple[str, ...] = ()

    def excluded_prefix(self, key: str) -> str | None:
        for prefix in self.excluded:
            if prefix and key.startswith(prefix):
                return prefix
        return None

    def reason(self, key: str, size: int | None = None, last_modified: datetime | None = None) -> str | None:
        """None if the object qualifies, else why not (for logs and tests)."""
        if self.excluded_prefix(key) is not None:
            return "excluded_prefix"
        if self.prefixes and not key.startswith(self.prefixes):
            return "prefix"
        if self.suffixes and not key.endswith(self.suffixes):
            return "suffix"
        if size is not None and (size < self.min_size or (self.max_size is not None and size > self.max_size)):
            return "size"
        if self.modified_since is not None and last_modified is not None and last_modified < self.modified_since:
            return "modified_since"
        return None

    def accepts(self, key: str, size: int | None = None, last_modified: datetime | None = None) -> bool:
        return self.reason(key, size, last_modified) is None


# --- rows and formats ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    url: str
    size: int
    etag: str
    last_modified: str  # ISO 8601 UTC
    expires_at: str  # ISO 8601 UTC

    def as_tuple(self) -> tuple[str, str, int, str, str, str]:
        return (self.key, self.url, self.size, self.etag, self.last_modified, self.expires_at)


def header(fmt: str) -> bytes:
    if fmt != "csv":
        return b""
    return format_rows((), "csv", with_header=True)


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_json_line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GUARDED_START = (*FORMULA_START, "'")  # a key already starting with ' is guarded too: reading back is exact


def _csv_key(key: str) -> str:
    """A key that a spreadsheet would run as a formula (`=HYPERLINK(...)`) gets a leading `'` (OWASP's CSV
    injection guard); JSON lines carry keys untouched, and every URL carries the exact key too."""
    return _csv_field("'" + key if key.startswith(_GUARDED_START) else key)


def _csv_field(text: str) -> str:
    """RFC 4180 minimal quoting, as csv.writer's QUOTE_MINIMAL does it (tests check the two agree)."""
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def format_lines(rows: Iterable[tuple[str, str, int, str, str, str]], fmt: str) -> list[str]:
    """One text line per (key, url, size, etag, last_modified, expires_at) row: the export's hot path, so
    CSV lines are built directly rather than through csv.writer (about twice as fast)."""
    if fmt == "csv":
        # URLs need no quoting: signed URLs percent-encode everything but unreserved characters, '/', '%',
        # '&', '=' and ':' (shared/keys.py), so they never hold a comma, a quote or a line break.
        return [f"{_csv_key(key)},{url},{size},{_csv_field(etag)},{modified},{expires}\r\n"
                for key, url, size, etag, modified, expires in rows]
    return [_json_line({"key": key, "url": url, "size": size, "etag": etag, "last_modified": modified,
                        "expires_at": expires}) + "\n"
            for key, url, size, etag, modified, expires in rows]


def format_rows(rows: Iterable[Row], fmt: str, *, with_header: bool = False) -> bytes:
    """CSV (RFC 4180: minimal quoting, embedded quotes doubled, CRLF) or one JSON object per line."""
    head = ",".join(COLUMNS) + "\r\n" if with_header and fmt == "csv" else ""
    return (head + "".join(format_lines((row.as_tuple() for row in rows), fmt))).encode("utf-8")


def _unguard(key: str) -> str:
    return key[1:] if key.startswith("'") and key[1:].startswith(_GUARDED_START) else key


def format_time(moment: datetime) -> str:
    """`2026-11-29T09:36:46Z` (faster than strftime; the export formats one per row)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def read_rows(data: bytes, fmt: str) -> list[dict[str, Any]]:
    """Parse an export file back into dicts (tests, tools)."""
    text = data.decode("utf-8")
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [{**row, "key": _unguard(row["key"]), "size": int(row["size"])} for row in reader]
    return [json.loads(line) for line in text.splitlines() if line]


class PartBuffer:
    """Rows waiting to be uploaded; hands out a part when ``part_size`` is reached.

    A part always ends at a row boundary, so "the last key of the last uploaded part" is an exact
    listing position to resume from.
    """

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._chunks: list[bytes] = []
        self.size = 0
        self.rows = 0
        self.last_key: str | None = None

    def add(self, data: bytes, rows: int, last_key: str | None) -> None:
        if data:
            self._chunks.append(data)
            self.size += len(data)
        self.rows += rows
        if last_key is not None and rows:
            self.last_key = last_key

    @property
    def full(self) -> bool:
        return self.size >= self.part_size

    @property
    def empty(self) -> bool:
        return self.size == 0

    def take(self) -> tuple[bytes, int, str | None]:
        """(bytes, rows, last key) of everything buffered; the buffer is empty afterwards."""
        data = b"".join(self._chunks)
        taken = (data, self.rows, self.last_key)
        self._chunks, self.size, self.rows, self.last_key = [], 0, 0, None
        return taken


# --- URL endpoint and signer -----------------------------------------------------------------------------


def url_signer(settings: Settings, credentials: Credentials, *, domain: str = "default", scheme: str = "",
               version: str | None = None) -> Signer:
    """One ``Signer`` for a run: the endpoint the sign function would use for these options
    (shared.url_options.url_endpoint: public endpoint, custom domain or acceleration; URL_SCHEME), the
    signature version and the validity bounds (URL_MIN_EXPIRES .. URL_MAX_EXPIRES)."""
    from shared.signing import Signer
    from shared.url_options import url_endpoint, validity_policy

    endpoint = url_endpoint(settings, domain=domain, scheme=scheme or None)
    return Signer(credentials, endpoint, settings.oss.bucket, region=settings.oss.region,
                  version=cast(Version, version or settings.urls.signature_version),  # both parsed as v4 | v1
                  policy=validity_policy(settings))
