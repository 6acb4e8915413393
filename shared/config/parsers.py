"""Parsers of configured values: each takes the raw string and returns the typed value or raises ValueError."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from shared.numbers import parse_ascii_int
from shared.validity import parse_utc


def _text(raw: str) -> str:
    return raw.strip()


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def parse_boolean(raw: str) -> bool:
    """The one reading of a yes/no text (variables and request parameters alike); ValueError otherwise."""
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError("expected true or false")


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        return parse_ascii_int(raw.strip(), low=low, high=high)

    return parse


def parse_choice(raw: str, options: tuple[str, ...], *, upper: bool = False) -> str:
    """``raw`` trimmed and case-folded (lower, or ``upper``) if it is one of ``options``; ValueError otherwise."""
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in options:
        raise ValueError("expected one of " + ", ".join(options))
    return value


def _choice(*options: str) -> Callable[[str], str]:
    return lambda raw: parse_choice(raw, options)


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _prefixes(raw: str) -> tuple[str, ...]:
    items = _csv(raw)
    for item in items:
        _prefix(item)
    return items


def _prefix(raw: str) -> str:
    value = raw.strip()
    if value and (not value.endswith("/") or value.startswith("/") or ".." in value.split("/")):
        raise ValueError("expected a key prefix ending with '/', not starting with '/', without '..'")
    if any(ch in value for ch in "*?"):
        raise ValueError("wildcards are not allowed in a prefix")
    return value


# Operations whose parameters name no other object (watermark and style can: shared/processing.py).
DEFAULT_PROCESS_OPERATIONS = ("image/resize,image/crop,image/rotate,image/format,image/quality,image/info,"
                              "image/auto-orient,image/interlace,image/blur,image/bright,image/contrast,"
                              "image/sharpen,image/average-hue")
_PROCESS_OPERATION_RE = re.compile(r"^[a-z]+/[a-z][a-z-]*$")


def _process_operations(raw: str) -> frozenset[str]:
    items = tuple(item.lower() for item in _csv(raw))
    for item in items:
        if not _PROCESS_OPERATION_RE.fullmatch(item):
            raise ValueError(f"expected type/operation such as image/resize, got {item[:40]!r}")
    return frozenset(items)


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _bucket(raw: str) -> str:
    value = raw.strip()
    if not _BUCKET_RE.fullmatch(value):
        raise ValueError("expected a bucket name: 3-63 of a-z, 0-9 and '-', not starting or ending with '-'")
    return value


_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")


def _region(raw: str) -> str:
    value = raw.strip()
    if value.startswith("oss-"):
        value = value[4:]
    if not _REGION_RE.fullmatch(value):
        raise ValueError("expected a region id such as cn-hangzhou")
    return value


_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$")


@dataclass(frozen=True)
class ConfiguredHost:
    """An endpoint as configured: host (with optional port) and the scheme, if one was given."""

    host: str
    scheme: str | None = None

    @property
    def is_ip(self) -> bool:
        hostname = self.host.rsplit(":", 1)[0] if self.host.count(":") == 1 else self.host
        if hostname == "localhost":
            return True
        try:
            ipaddress.ip_address(hostname.strip("[]"))
        except ValueError:
            return False
        return True


def _endpoint(raw: str) -> ConfiguredHost | None:
    value = raw.strip()
    if not value:
        return None
    scheme = None
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or parts.path not in {"", "/"} or parts.query:
            raise ValueError("expected host[:port] or http(s)://host[:port] with no path")
        scheme, value = parts.scheme, parts.netloc
    if not _HOST_RE.fullmatch(value):
        raise ValueError("expected host[:port] or http(s)://host[:port]")
    return ConfiguredHost(host=value.lower(), scheme=scheme)


def _url(raw: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an http(s) URL")
    return value.rstrip("/")


def _https_url(raw: str) -> str:
    """An https URL; plain http only for loopback (a JWKS fetched in clear text can be swapped in transit)."""
    value = _url(raw)
    if value and not value.startswith("https://"):
        host = urlsplit(value).hostname or ""
        if host not in {"localhost", "127.0.0.1", "::1"}:
            raise ValueError("expected an https URL (http only for localhost)")
    return value


def _json_object(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _secret(raw: str) -> str:
    value = raw.strip()
    if value and len(value) < 16:
        raise ValueError("expected at least 16 characters")
    return value


def _time(raw: str) -> datetime | None:
    """An ISO 8601 time (UTC when no offset is given), or None when empty."""
    return parse_utc(raw) if raw.strip() else None
