"""PostObject: browser form uploads (multipart/form-data) authorised by a signed policy.

The form carries ``policy`` (base64 JSON: expiration + conditions) signed with V1
(``OSSAccessKeyId`` + ``Signature`` = base64 HMAC-SHA1 of the base64 policy) or V4
(``x-oss-signature-version``, ``x-oss-credential``, ``x-oss-date``, ``x-oss-signature`` = hex
HMAC-SHA256 of the base64 policy with the V4 signing key). Fields precede ``file``; the file part is
streamed to disk, never held in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.oss.auth import Principal, Verifier, parse_v4_credential, v4_signing_key
from local.oss.errors import OssError, access_denied, invalid_argument

MAX_FIELD = 64 * 1024
MAX_HEADER_BLOCK = 16 * 1024
V4_ALGORITHM = "OSS4-HMAC-SHA256"


def _malformed(message: str) -> OssError:
    return invalid_argument(f"Malformed POST form: {message}")


class _Stream:
    """Byte stream over body chunks with delimiter search (keeps only a small buffer)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buffer += chunk
                return True
        return False

    def read_exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not self._fill():
                raise _malformed("unexpected end of body")
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def read_until(self, delimiter: bytes, limit: int) -> bytes:
        start = 0
        while True:
            index = self._buffer.find(delimiter, start)
            if index >= 0:
                data = bytes(self._buffer[:index])
                del self._buffer[: index + len(delimiter)]
                return data
            if len(self._buffer) > limit:
                raise _malformed("form field too large")
            start = max(0, len(self._buffer) - len(delimiter) + 1)
            if not self._fill():
                raise _malformed("unexpected end of body")

    def stream_until(self, delimiter: bytes) -> Iterator[bytes]:
        """Yield the bytes before ``delimiter`` (consumed), chunk by chunk."""
        keep = len(delimiter) - 1
        while True:
            index = self._buffer.find(delimiter)
            if index >= 0:
                if index:
                    yield bytes(self._buffer[:index])
                del self._buffer[: index + len(delimiter)]
                return
            if len(self._buffer) > keep:
                cut = len(self._buffer) - keep
                yield bytes(self._buffer[:cut])
                del self._buffer[:cut]
            if not self._fill():
                raise _malformed("unexpected end of body")

    def drain(self) -> None:
        self._buffer.clear()
        for _ in self._chunks:
            pass


@dataclass
class PostForm:
    fields: dict[str, str] = field(default_factory=dict)  # lowercase name -> value
    filename: str = ""
    file_content_type: str = ""


def boundary_of(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise invalid_argument("PostObject needs Content-Type multipart/form-data.")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise _malformed("missing boundary")


def _disposition(headers: Mapping[str, str]) -> tuple[str, str | None]:
    value = headers.get("content-disposition", "")
    name, filename = "", None
    for item in value.split(";")[1:]:
        key, _, raw = item.strip().partition("=")
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = raw[1:-1]
        if key.lower() == "name":
            name = raw
        elif key.lower() == "filename":
            filename = raw
    return name, filename


def read_fields(stream: _Stream, boundary: str) -> PostForm:
    """Read form fields up to the ``file`` part; the stream is left at the file's data."""
    dash_boundary = b"--" + boundary.encode()
    stream.read_until(dash_boundary, MAX_FIELD)  # preamble
    form = PostForm()
    while True:
        if stream.read_exact(2) == b"--":
            raise invalid_argument("The form has no file field.", ArgumentName="file")
        header_block = stream.read_until(b"\r\n\r\n", MAX_HEADER_BLOCK).decode("utf-8", "replace")
        headers = {}
        for line in header_block.split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        name, filename = _disposition(headers)
        if name.lower() == "file":
            form.filename = filename or ""
            form.file_content_type = headers.get("content-type", "")
            return form
        field_value = stream.read_until(b"\r\n" + dash_boundary, MAX_FIELD)
        form.fields[name.lower()] = field_value.decode("utf-8", "replace")


@dataclass(frozen=True)
class Policy:
    expiration: float
    conditions: list[Any]


def parse_policy(encoded: str) -> Policy:
    try:
        document = json.loads(base64.b64decode(encoded, validate=True))
        expiration = datetime.fromisoformat(document["expiration"].replace("Z", "+00:00")).timestamp()
        conditions = document.get("conditions", [])
        if not isinstance(conditions, list):
            raise TypeError("conditions")
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise invalid_argument("Invalid Policy: Invalid JSON.") from None
    return Policy(expiration, conditions)


def _condition_failed(condition: Any) -> OssError:
    return access_denied(f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")


# The policy's match conditions, ["<operator>", "$<field>", <wanted>]: (the field's value, wanted) -> met.
_MATCHES: dict[str, Callable[[str | None, Any], bool]] = {
    "eq": lambda actual, wanted: actual == str(wanted),
    "starts-with": lambda actual, wanted: actual is not None and actual.startswith(str(wanted)),
    "in": lambda actual, wanted: actual in [str(w) for w in wanted],
    "not-in": lambda actual, wanted: actual not in [str(w) for w in wanted],
}


def check_conditions(policy: Policy, values: Mapping[str, str], size: int | None) -> None:
    """Check every policy condition; ``size`` None skips content-length-range (checked after upload)."""
    for condition in policy.conditions:
        if isinstance(condition, dict):
            _check_exact(condition, values)
            continue
        if not isinstance(condition, list) or not condition:
            raise invalid_argument("Invalid Policy: Invalid conditions.")
        if str(condition[0]).lower() == "content-length-range":
            _check_content_length(condition, size)
        else:
            _check_match(condition, values)


def _check_exact(condition: dict[str, Any], values: Mapping[str, str]) -> None:
    """{"<field>": "<value>"}: the field equals the value."""
    for name, expected in condition.items():
        if values.get(name.lower()) != str(expected):
            raise _condition_failed(condition)


def _check_content_length(condition: list[Any], size: int | None) -> None:
    """["content-length-range", low, high]; a None size (the file not received yet) passes."""
    if len(condition) != 3:
        raise invalid_argument("Invalid Policy: Invalid content-length-range.")
    low, high = int(condition[1]), int(condition[2])
    if size is not None and size < low:
        raise OssError(400, "EntityTooSmall", MinSizeAllowed=str(low), ProposedSize=str(size))
    if size is not None and size > high:
        raise OssError(400, "EntityTooLarge", MaxSizeAllowed=str(high), ProposedSize=str(size))


def _check_match(condition: list[Any], values: Mapping[str, str]) -> None:
    operator = str(condition[0]).lower()
    if len(condition) != 3 or not str(condition[1]).startswith("$"):
        raise invalid_argument("Invalid Policy: Invalid conditions.")
    matches = _MATCHES.get(operator)
    if matches is None:
        raise invalid_argument(f"Invalid Policy: unknown condition {operator}.")
    if not matches(values.get(str(condition[1])[1:].lower()), condition[2]):
        raise _condition_failed(condition)


def authenticate_form(verifier: Verifier, form: PostForm, now: float) -> tuple[Principal, Policy | None]:
    """Verify the policy signature; a form without credentials is anonymous (no policy)."""
    fields = form.fields
    token = fields.get("x-oss-security-token")
    if fields.get("x-oss-signature-version"):
        if fields["x-oss-signature-version"] != V4_ALGORITHM:
            raise invalid_argument("Unsupported x-oss-signature-version.")
        for required in ("x-oss-credential", "x-oss-date", "x-oss-signature", "policy"):
            if not fields.get(required):
                raise invalid_argument(f"The form field {required} is required.", ArgumentName=required)
        access_key_id, scope_date, region, product = parse_v4_credential(fields["x-oss-credential"])
        secret, principal = verifier.credentials(access_key_id, token)
        verifier.check_scope(scope_date, region, product, fields["x-oss-date"])
        key = v4_signing_key(secret, scope_date, region, product)
        expected = hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()
        provided = fields["x-oss-signature"].lower()
    elif fields.get("ossaccesskeyid"):
        if not fields.get("policy") or not fields.get("signature"):
            raise invalid_argument("The form fields policy and Signature are required with OSSAccessKeyId.")
        secret, principal = verifier.credentials(fields["ossaccesskeyid"], token)
        expected = base64.b64encode(
            hmac.new(secret.encode(), fields["policy"].encode(), hashlib.sha1).digest()
        ).decode()
        provided = fields["signature"]
    else:
        return Principal("anonymous"), None
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise OssError(403, "SignatureDoesNotMatch", StringToSign=fields["policy"])
    policy = parse_policy(fields["policy"])
    if now > policy.expiration:
        raise access_denied("Invalid according to Policy: Policy expired.")
    return principal, policy


def make_stream(chunks: Iterator[bytes]) -> _Stream:
    return _Stream(chunks)
