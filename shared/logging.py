"""Structured JSON logging (structlog) with a processor that masks secrets wherever they appear.

Each line carries timestamp, level, event, function, request_id and cold_start. ``mask_secrets`` runs
last before rendering, so nothing a handler logs, however it is nested, can carry an AccessKey secret,
security token, URL signature, Authorization header or JWT to the log store. Records of the standard
library's logging (urllib3, the Alibaba Cloud SDKs, any library) are rendered by the same processors
(``structlog.stdlib.ProcessorFormatter``), so they are masked too and come out as the same JSON lines.
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
    # Query-string signatures and tokens (V1, V4, STS; ``sig``: a /download proxy link's, a capability too).
    (("=",), re.compile(r"(?i)((?:^|[?&;\s])(?:Signature|x-oss-signature|x-oss-security-token|security-token|"
                     r"SecurityToken|AccessKeySecret|sig)=)[^&\s\"']+"), r"\1" + MASK),
    # Authorization header values.
    (("OSS4-HMAC-SHA256",), re.compile(
        r"(OSS4-HMAC-SHA256\s+Credential=[^,\s]+(?:,AdditionalHeaders=[^,\s]+)?,\s*Signature=)[0-9a-fA-F]+"),
     r"\1" + MASK),
    (("ACS3-HMAC-SHA256",), re.compile(
        r"(ACS3-HMAC-SHA256\s+Credential=[^,\s]+,\s*SignedHeaders=[^,\s]+,\s*Signature=)[0-9a-fA-F]+"),
     r"\1" + MASK),
    (("OSS ",), re.compile(r"(\bOSS\s+[A-Za-z0-9.]+:)[A-Za-z0-9+/=]+"), r"\1" + MASK),
    (("earer", "EARER"), re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    # Header lines as HTTP debug output prints them ("> x-acs-security-token : CAIS...", "Authorization: ..."),
    # and credentials in JSON or repr text ('"SecurityToken": "CAIS..."', "access_key_secret='...'").
    (("oken", "OKEN", "uthorization", "UTHORIZATION", "ecret", "ECRET"), re.compile(
        r"(?i)((?:x-acs-security-token|x-oss-security-token|security[-_]?token|authorization|access[-_]?key[-_]?secret)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s,;'\"&}]+"), r"\1" + MASK),
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

# Processors every line goes through, from structlog or from the standard library's logging (urllib3, the
# Alibaba Cloud SDKs, anything): secrets are masked last, just before rendering.
_SHARED_PROCESSORS: tuple[Any, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
)


class _StdlibHandler(logging.Handler):
    """Writes standard-library records through ``ProcessorFormatter`` to our stream (sys.stdout looked up at each
    line, so a replaced stdout, as pytest and some runtimes do, is followed)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
        except Exception:  # logging must never break the caller (the logging module's own rule)
            self.handleError(record)


def _route_standard_logging(level: int, stream: Any) -> None:
    """Send every standard-library record through the structlog pipeline (structlog.stdlib.ProcessorFormatter).

    Our handler replaces any previous one of ours and any plain StreamHandler on stdout/stderr (a runtime's
    default console handler would print the raw, unmasked line); other handlers (files, test capture) stay."""
    root = logging.getLogger()
    consoles = {id(sys.stdout), id(sys.stderr), id(sys.__stdout__), id(sys.__stderr__)}
    for handler in list(root.handlers):
        plain_console = type(handler) is logging.StreamHandler and id(getattr(handler, "stream", None)) in consoles
        if isinstance(handler, _StdlibHandler) or plain_console:
            root.removeHandler(handler)
    handler = _StdlibHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_secrets,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    ))
    handler.setLevel(level)  # records propagated from libraries that set their own logger to DEBUG stop here
    root.addHandler(handler)
    root.setLevel(level)
    adopt_library_loggers()


def adopt_library_loggers() -> None:
    """Take the console handlers off libraries' own loggers so their records reach ours through the root.

    Tea and darabonba (the Alibaba Cloud SDK core) add a StreamHandler to their logger at import time, and with
    ``DEBUG=sdk`` print every request's headers (security token, signature) through it. Call again after
    importing such a library lazily (shared/sts.py does)."""
    for existing in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(existing, logging.Logger):
            continue
        for handler in list(existing.handlers):
            if type(handler) is logging.StreamHandler:
                existing.removeHandler(handler)
        existing.propagate = True


def configure(level: str = "info", *, stream: Any = None) -> None:
    """Configure structlog and the standard library's logging once per container (idempotent); ``stream``
    is for tests."""
    global _configured
    numeric_level = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.processors.format_exc_info,
            mask_secrets,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=stream is None,
    )
    _route_standard_logging(numeric_level, stream)
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
