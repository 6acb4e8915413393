"""Structured JSON logging (structlog) with a processor that masks secrets wherever they appear.

Each line carries timestamp, level, event, function, request_id and cold_start. ``mask_secrets`` runs
last before rendering, so nothing a handler logs, however it is nested, can carry an AccessKey secret,
security token, URL signature, Authorization header or JWT to the log store.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

MASK = "***"

# Keys whose values are always secret, whatever they look like (compared lowercased, '-' as '_').
_SECRET_KEYS = frozenset({
    "accesskeysecret", "access_key_secret", "secret", "securitytoken", "security_token", "x_oss_security_token",
    "token", "authorization", "signature", "x_oss_signature", "password", "jwt", "api_key", "apikey",
    "x_api_key", "webhook_secret", "link_secret", "hs256_secret", "cookie", "set_cookie",
})

# Secret-looking fragments inside free text (URLs, headers, exception messages), each with a cheap
# substring guard so that ordinary strings skip the regular expressions entirely.
_VALUE_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # JWTs: three base64url segments, the first starting with '{"' encoded.
    (("eyJ",), re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"), MASK),
    # Query-string signatures and tokens (V1, V4, STS).
    (("=",), re.compile(r"(?i)((?:^|[?&;\s])(?:Signature|x-oss-signature|x-oss-security-token|security-token|"
                     r"SecurityToken|AccessKeySecret)=)[^&\s\"']+"), r"\1" + MASK),
    # Authorization header values.
    (("OSS4-HMAC-SHA256",), re.compile(
        r"(OSS4-HMAC-SHA256\s+Credential=[^,\s]+(?:,AdditionalHeaders=[^,\s]+)?,\s*Signature=)[0-9a-fA-F]+"),
     r"\1" + MASK),
    (("ACS3-HMAC-SHA256",), re.compile(
        r"(ACS3-HMAC-SHA256\s+Credential=[^,\s]+,\s*SignedHeaders=[^,\s]+,\s*Signature=)[0-9a-fA-F]+"),
     r"\1" + MASK),
    (("OSS ",), re.compile(r"(\bOSS\s+[A-Za-z0-9.]+:)[A-Za-z0-9+/=]+"), r"\1" + MASK),
    (("earer", "EARER"), re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
)
_MAX_REGISTERED = 256  # function and signer credentials; vended credentials are never logged in the first place

_registered: dict[str, None] = {}  # insertion-ordered: when full, the oldest goes (credentials rotate)
_registered_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this exact value (e.g. a credential the function loaded) wherever it appears in a log line."""
    if value and len(value) >= 8:
        with _registered_lock:
            _registered.pop(value, None)
            if len(_registered) >= _MAX_REGISTERED:
                del _registered[next(iter(_registered))]
            _registered[value] = None


def mask_text(text: str) -> str:
    for guards, pattern, replacement in _VALUE_PATTERNS:
        if any(guard in text for guard in guards):
            text = pattern.sub(replacement, text)
    for secret in tuple(_registered):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in _SECRET_KEYS


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: (MASK if _is_secret_key(k) and v not in (None, "") else _mask(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return mask_text(str(value))


def mask_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret keys and secret-looking values, recursively."""
    return _mask(dict(event_dict))


_configured = False
_cold_start = True


def configure(level: str = "info", *, stream: Any = None) -> None:
    """Configure structlog once per container (idempotent); ``stream`` is for tests."""
    global _configured
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_secrets,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=stream is None,
    )
    _configured = True


def is_configured() -> bool:
    return _configured


def get_logger(**initial: Any) -> Any:
    if not _configured:
        configure()
    return structlog.get_logger(**initial)


def bind_invocation(function: str, context: Any) -> None:
    """Bind function name, request id and the cold-start flag for the current invocation."""
    global _cold_start
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        function=function,
        request_id=getattr(context, "request_id", None),
        cold_start=_cold_start,
    )
    _cold_start = False


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)
