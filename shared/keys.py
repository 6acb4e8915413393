"""OSS object keys: validation, URL path encoding and scope checks.

Also home of the signing layer's error classes, because this is the lowest module of the
layer (signing.py, validity.py and disposition.py import it; it imports only shared.errors).

Pure: stdlib only, no network, no SDK.
"""

from __future__ import annotations

import re
from functools import lru_cache

from shared.errors import AppError

MAX_KEY_BYTES = 1023

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class SigningError(AppError):
    """Base of every error raised by the signing layer: a client error with a stable code."""

    status = 400
    code = "SigningError"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidKey(SigningError):
    code = "InvalidKey"


class KeyOutsideScope(SigningError):
    status = 403
    code = "KeyOutsideScope"


class InvalidBucket(SigningError):
    code = "InvalidBucket"


class InvalidExpires(SigningError):
    code = "InvalidExpires"


class ExpiresTooShort(SigningError):
    code = "ExpiresTooShort"


class CredentialsExpiring(SigningError):
    """The signing credentials have less validity left than the configured floor.

    A server-side condition (the caller asked for nothing wrong): refresh the credentials and retry.
    """

    status = 503
    code = "CredentialsExpiring"


class InvalidOption(SigningError):
    code = "InvalidOption"


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def is_unicode_text(value: object) -> bool:
    """False if a string anywhere in ``value`` (nested dicts and lists, keys included) holds a lone surrogate
    (U+D800-U+DFFF): JSON's ``\\ud800`` escapes decode to one (RFC 8259 section 8.2), and no UTF-8 encoder,
    HMAC or header will take it. Deeply nested values may raise RecursionError, as json.loads does."""
    if isinstance(value, str):
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(is_unicode_text(k) and is_unicode_text(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(is_unicode_text(item) for item in value)
    return True


# C0 controls and DEL: they break HTTP request lines, canonical strings and logs.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: object) -> str:
    """Return `key` unchanged if it is a valid OSS object key, else raise InvalidKey.

    Valid: a str of 1..1023 UTF-8 bytes, not starting with `/` or `\\`, without control characters
    and without lone surrogates. Everything else (spaces, `+`, `%`, `#`, `?`, `~`, unicode, `a//b`)
    is allowed, as OSS allows it.
    """
    if not isinstance(key, str):
        raise InvalidKey("object key must be a string")
    if not key:
        raise InvalidKey("object key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey("object key is not valid UTF-8 (lone surrogate)") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is {size} bytes long; the maximum is {MAX_KEY_BYTES} bytes")
    if key[0] in "/\\":
        raise InvalidKey("object key must not start with '/' or '\\'")
    if _CONTROL_CHARS.search(key):
        raise InvalidKey("object key must not contain control characters")
    return key


def is_valid_key(key: object) -> bool:
    try:
        validate_key(key)
    except InvalidKey:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# URL encoding
# ---------------------------------------------------------------------------------------------


def encode_key_path(key: str) -> str:
    """Percent-encode a key for a URL path: RFC 3986 unreserved characters and `/` stay as is.

    Same as oss2 `sign_url(slash_safe=True)` and alibabacloud-oss-v2, so `+` becomes `%2B` and a
    space `%20`, except for one deliberate difference: a path segment that is exactly `.` or `..`
    is sent as `%2E` / `%2E%2E`. Browsers, curl and HTTP libraries remove dot segments before
    sending, which would silently address another key; the service decodes `%2E` back to `.`.
    """
    return escape_dot_segments(quote_path(key))


def quote_path(text: str) -> str:
    """`urllib.parse.quote(text, safe="/")`, about twice as fast on non-ASCII keys.

    str.translate runs in C; the table computes each code point's encoding once, on first use.
    """
    return text.translate(_PATH_QUOTING)


def quote_component(text: str) -> str:
    """`urllib.parse.quote(text, safe="")`: only RFC 3986 unreserved characters stay as is."""
    return text.translate(_COMPONENT_QUOTING)


def escape_dot_segments(encoded_path: str) -> str:
    """Turn `.` / `..` segments of an already encoded path into `%2E` / `%2E%2E`."""
    if not (encoded_path.startswith(".") or "/." in encoded_path):
        return encoded_path
    return "/".join(_escape_dot_segment(segment) for segment in encoded_path.split("/"))


def _escape_dot_segment(segment: str) -> str:
    if segment in (".", ".."):
        return segment.replace(".", "%2E")
    return segment


class _PercentEncodingTable(dict):
    """Code point -> its percent-encoding, filled lazily for str.translate (bounded in size)."""

    _UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    _MAX_ENTRIES = 65536

    def __init__(self, also_safe: str) -> None:
        super().__init__()
        self._safe = frozenset(self._UNRESERVED + also_safe)

    def __missing__(self, code_point: int) -> str:
        char = chr(code_point)
        # A lone surrogate raises UnicodeEncodeError here, as quote() does.
        encoded = char if char in self._safe else "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        if len(self) < self._MAX_ENTRIES:
            self[code_point] = encoded
        return encoded


_PATH_QUOTING = _PercentEncodingTable(also_safe="/")
_COMPONENT_QUOTING = _PercentEncodingTable(also_safe="")


# ---------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)  # scopes repeat across calls; a batch checks one scope a thousand times
def validate_scope_prefix(prefix: str) -> str:
    """A scope prefix is empty (whole bucket) or a valid key prefix ending in `/` without dot segments."""
    if prefix == "":
        return prefix
    if not prefix.endswith("/"):
        raise InvalidOption("scope prefix must end with '/'")
    validate_key(prefix)
    if _has_dot_segment(prefix):
        raise InvalidOption("scope prefix must not contain '.' or '..' segments")
    return prefix


def is_key_in_scope(key: str, prefix: str) -> bool:
    """True if `key` is a valid key strictly inside the scope `prefix`.

    Keys with `.`/`..` segments are refused even though OSS treats them literally: anything
    that normalises paths downstream (CDN, proxy, browser) could map `scope/../other` elsewhere.
    """
    validate_scope_prefix(prefix)
    if not is_valid_key(key):
        return False
    return key.startswith(prefix) and len(key) > len(prefix) and not _has_dot_segment(key)


def require_key_in_scope(key: str, prefix: str) -> str:
    """Return the validated key, raising InvalidKey (bad key) or KeyOutsideScope."""
    validate_key(key)
    if not is_key_in_scope(key, prefix):
        raise KeyOutsideScope("object key is outside the caller's scope")
    return key


def _has_dot_segment(key: str) -> bool:
    if not (key.startswith(".") or "/." in key):  # the common case, without splitting the key
        return False
    return any(segment in (".", "..") for segment in key.split("/"))
