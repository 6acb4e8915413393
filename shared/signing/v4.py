"""OSS Signature V4 (OSS4-HMAC-SHA256): its canonical pieces, then one class per placement.

Wire rules: docs/reference oss-signing.md, sections 3-4 (encoding: 5).

    canonical request = VERB \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n
                        AdditionalHeaders \\n UNSIGNED-PAYLOAD
    string to sign    = OSS4-HMAC-SHA256 \\n <x-oss-date> \\n <scope> \\n hex(sha256(canonical request))
    signature         = hex(hmac_sha256(signing_key(secret, date, region, product), string to sign))
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from hashlib import sha256

from shared.keys import escape_dot_segments, quote_component, quote_path
from shared.signing.model import Credentials, without
from shared.validity import Validity

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def v4_encode(text: str) -> str:
    """RFC 3986: everything but A-Z a-z 0-9 - _ . ~ percent-encoded over UTF-8, uppercase hex."""
    return quote_component(text)


def v4_canonical_uri(bucket: str | None, key: str | None) -> str:
    if not bucket:
        return "/"
    return "/" + bucket + "/" + quote_path(key or "")


def v4_canonical_query(params: Mapping[str, str | None]) -> str:
    """Sorted by encoded name; `name=value`, bare `name` for an empty or None value."""
    encoded = sorted((v4_encode(name), v4_encode(value or "")) for name, value in params.items())
    return "&".join(f"{name}={value}" if value else name for name, value in encoded)


def is_v4_signed_header(lower_name: str, additional: Iterable[str] = ()) -> bool:
    return (
        lower_name.startswith("x-oss-")
        or lower_name in ("content-type", "content-md5")
        or lower_name in additional
    )


def v4_additional_headers(headers: Mapping[str, str], requested: Iterable[str]) -> list[str]:
    """Requested extra headers that are present, non-empty and not signed by default; sorted."""
    present = {name.lower(): value for name, value in headers.items()}
    names = {name.lower() for name in requested}
    return sorted(name for name in names if present.get(name) and not is_v4_signed_header(name))


def v4_canonical_headers(headers: Mapping[str, str], additional: Iterable[str] = ()) -> str:
    additional = frozenset(additional)
    lines = sorted(
        (name.lower(), value) for name, value in headers.items() if is_v4_signed_header(name.lower(), additional)
    )
    return "".join(f"{name}:{value}\n" for name, value in lines)


def v4_canonical_request(
    method: str,
    canonical_uri: str,
    canonical_query: str,
    canonical_headers: str,
    additional_headers: Iterable[str] = (),
    payload_hash: str = UNSIGNED_PAYLOAD,
) -> str:
    return (
        f"{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n"
        f"{';'.join(additional_headers)}\n{payload_hash}"
    )


def v4_scope(date: str, region: str, product: str = "oss") -> str:
    return f"{date}/{region}/{product}/{V4_TERMINATOR}"


def v4_string_to_sign(timestamp: str, scope: str, canonical_request: str) -> str:
    digest = sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{V4_ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


@lru_cache(maxsize=64)
def v4_signing_key(secret: str, date: str, region: str, product: str = "oss") -> bytes:
    """Depends on the UTC day only, hence cached: signing a URL then costs one HMAC."""
    key = _hmac256(("aliyun_v4" + secret).encode("utf-8"), date)
    key = _hmac256(key, region)
    key = _hmac256(key, product)
    return _hmac256(key, V4_TERMINATOR)


def v4_signature(signing_key: bytes, string_to_sign: str) -> str:
    return hmac.digest(signing_key, string_to_sign.encode("utf-8"), "sha256").hex()


def _hmac256(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode("utf-8"), "sha256")


def v4_timestamp(moment: datetime) -> str:
    """`20231114T221320Z` (x-oss-date)."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


class V4QueryAuth:
    """V4 in the query string: pre-signed URLs."""

    def __init__(self, credentials: Credentials, bucket: str, region: str, product: str, base_url: str) -> None:
        self.credentials = credentials
        self.bucket = bucket
        self.region = region
        self.product = product
        self.base_url = base_url

    def url_signer(
        self, method: str, params: dict[str, str], headers: Mapping[str, str], validity: Validity
    ) -> Callable[[str], str]:
        """Everything but the key is fixed: returns key -> URL (one quote, one SHA-256, one HMAC)."""
        credentials = self.credentials
        timestamp = v4_timestamp(validity.signed_at)
        date = timestamp[:8]
        scope = v4_scope(date, self.region, self.product)
        params = {
            **params,
            "x-oss-signature-version": V4_ALGORITHM,
            "x-oss-credential": f"{credentials.access_key_id}/{scope}",
            "x-oss-date": timestamp,
            "x-oss-expires": str(validity.expires_in),
        }
        if credentials.security_token:
            params["x-oss-security-token"] = credentials.security_token
        # The canonical query is also a valid URL query: the URL carries it verbatim.
        query = v4_canonical_query(params)
        request_head = f"{method}\n/{self.bucket}/"
        request_tail = f"\n{query}\n{v4_canonical_headers(headers)}\n\n{UNSIGNED_PAYLOAD}"
        sts_head = f"{V4_ALGORITHM}\n{timestamp}\n{scope}\n"
        signing_key = v4_signing_key(credentials.access_key_secret, date, self.region, self.product)
        url_head = self.base_url
        url_tail = f"?{query}&x-oss-signature="

        def sign_key(key: str) -> str:
            encoded = quote_path(key)  # the canonical URI keeps dot segments, the URL path escapes them
            canonical_request = request_head + encoded + request_tail
            string_to_sign = sts_head + sha256(canonical_request.encode("utf-8")).hexdigest()
            signature = hmac.digest(signing_key, string_to_sign.encode("ascii"), "sha256").hex()
            return url_head + escape_dot_segments(encoded) + url_tail + signature

        return sign_key


class V4HeaderAuth:
    """V4 in the Authorization header: the functions' own requests."""

    def __init__(self, credentials: Credentials, bucket: str, region: str, product: str) -> None:
        self.credentials = credentials
        self.bucket = bucket
        self.region = region
        self.product = product

    def add_auth(
        self,
        method: str,
        key: str | None,
        params: Mapping[str, str | None],
        headers: dict[str, str],
        additional_headers: Iterable[str],
        moment: datetime,
    ) -> dict[str, str]:
        credentials = self.credentials
        timestamp = v4_timestamp(moment)
        headers = without(headers, "x-oss-date", "x-oss-security-token", "authorization")
        headers["x-oss-date"] = timestamp
        if not any(name.lower() == "x-oss-content-sha256" for name in headers):
            headers["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
        if credentials.security_token:
            headers["x-oss-security-token"] = credentials.security_token
        additional = v4_additional_headers(headers, additional_headers)
        payload_hash = next(value for name, value in headers.items() if name.lower() == "x-oss-content-sha256")
        canonical_request = v4_canonical_request(
            method,
            v4_canonical_uri(self.bucket, key),
            v4_canonical_query(params),
            v4_canonical_headers(headers, additional),
            additional,
            payload_hash,
        )
        scope = v4_scope(timestamp[:8], self.region, self.product)
        string_to_sign = v4_string_to_sign(timestamp, scope, canonical_request)
        signing_key = v4_signing_key(credentials.access_key_secret, timestamp[:8], self.region, self.product)
        authorization = f"{V4_ALGORITHM} Credential={credentials.access_key_id}/{scope}"
        if additional:
            authorization += f",AdditionalHeaders={';'.join(additional)}"
        headers["Authorization"] = f"{authorization},Signature={v4_signature(signing_key, string_to_sign)}"
        return headers
