"""The orchestrator: one Signer per (credentials, endpoint, bucket, region, version) picks the auth class for
its version and placement (v4.py, v1.py), as botocore's signers.py picks from auth.py, and reuses everything
that does not depend on the object key, so that a batch costs one SHA-256 and one HMAC per V4 URL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType

from shared.keys import InvalidBucket, InvalidKey, InvalidOption, encode_key_path, quote_component, validate_key
from shared.signing.endpoints import Endpoint, check_region
from shared.signing.model import (
    NO_HEADERS,
    NO_OPTIONS,
    PRESIGN_METHODS,
    REQUEST_METHODS,
    Credentials,
    PresignedUrl,
    PresignOptions,
    SignedRequest,
    check_headers,
    check_text_option,
)
from shared.signing.v1 import V1HeaderAuth, V1QueryAuth
from shared.signing.v4 import V4HeaderAuth, V4QueryAuth
from shared.validity import Validity, ValidityPolicy, Version, effective_validity, truncate_to_second

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# Signature version -> (query-string auth, Authorization-header auth).
_AUTH: Mapping[str, tuple[type[V4QueryAuth] | type[V1QueryAuth], type[V4HeaderAuth] | type[V1HeaderAuth]]] = {
    "v4": (V4QueryAuth, V4HeaderAuth),
    "v1": (V1QueryAuth, V1HeaderAuth),
}


class Signer:
    """Signs URLs and requests for one bucket with one set of credentials.

    Build one per (credentials, endpoint, bucket, region, version) and reuse it: everything that
    does not depend on the object key is computed once per call, not once per key.
    """

    def __init__(
        self,
        credentials: Credentials,
        endpoint: Endpoint,
        bucket: str,
        *,
        region: str,
        version: Version = "v4",
        product: str = "oss",
        policy: ValidityPolicy | None = None,
    ) -> None:
        if version not in _AUTH:
            raise InvalidOption("signature version must be 'v4' or 'v1'")
        if not isinstance(bucket, str) or not _BUCKET_NAME.fullmatch(bucket):
            raise InvalidBucket("bucket name must be 3-63 lowercase letters, digits or hyphens")
        check_region(region)
        self.credentials = credentials
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.version: Version = version
        self.product = product
        self.policy = policy or ValidityPolicy()
        self._base_url = endpoint.base_url(bucket)
        query_auth, header_auth = _AUTH[version]
        self._query_auth = query_auth(credentials, bucket, region, product, self._base_url)
        self._header_auth = header_auth(credentials, bucket, region, product)
        # The last prepared URL signer: consecutive calls with the same method, expires, options
        # and second reuse it instead of rebuilding the canonical query.
        self._prepared: tuple | None = None

    def __repr__(self) -> str:
        return (
            f"Signer(bucket={self.bucket!r}, endpoint={self.endpoint!r}, region={self.region!r}, "
            f"version={self.version!r}, access_key_id={self.credentials.access_key_id!r})"
        )

    # -- pre-signed URLs ---------------------------------------------------------------------

    def presign(
        self,
        key: str,
        *,
        expires: int,
        method: str = "GET",
        options: PresignOptions | None = None,
        now: datetime | None = None,
    ) -> PresignedUrl:
        options = options or NO_OPTIONS
        sign_key, headers, validity = self._prepare(method, options, expires, now)
        return PresignedUrl(sign_key(validate_key(key)), method, headers, validity)

    def presign_many(
        self,
        keys: Iterable[str],
        *,
        expires: int,
        method: str = "GET",
        options: PresignOptions | None = None,
        now: datetime | None = None,
    ) -> list[PresignedUrl]:
        """Sign every key with the same method, options and validity. Any invalid key fails the call."""
        options = options or NO_OPTIONS
        sign_key, headers, validity = self._prepare(method, options, expires, now)
        results = []
        for index, key in enumerate(keys):
            try:
                results.append(PresignedUrl(sign_key(validate_key(key)), method, headers, validity))
            except InvalidKey as error:
                raise InvalidKey(f"keys[{index}]: {error.message}") from None
        return results

    def validity(self, expires: int, *, now: datetime | None = None) -> Validity:
        return effective_validity(
            expires,
            version=self.version,
            now=now or datetime.now(timezone.utc),
            credentials_expire_at=self.credentials.expiration,
            policy=self.policy,
        )

    def _prepare(
        self, method: str, options: PresignOptions, expires: int, now: datetime | None
    ) -> tuple[Callable[[str], str], Mapping[str, str], Validity]:
        """(key -> URL, headers to send, validity) for this call; reused while nothing changes."""
        now = truncate_to_second(now or datetime.now(timezone.utc))
        prepared = self._prepared
        # `type(expires) is int`: 60.0 == 60 must not skip validation through the cache.
        if prepared and type(expires) is int and prepared[:4] == (method, expires, now, options):
            return prepared[4]
        if method not in PRESIGN_METHODS:
            raise InvalidOption(f"method must be one of {', '.join(sorted(PRESIGN_METHODS))}")
        options.check_method(method)
        validity = self.validity(expires, now=now)
        headers = MappingProxyType(options.upload_headers()) if method == "PUT" else NO_HEADERS
        result = (self._query_auth.url_signer(method, options.query_params(), headers, validity), headers, validity)
        # `options` is compared by value (frozen); a new equal object reuses the prepared signer.
        self._prepared = (method, expires, now, options, result)
        return result

    # -- Authorization header (our own server-side requests) ---------------------------------

    def sign_request(
        self,
        method: str,
        key: str | None = None,
        *,
        params: Mapping[str, str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        additional_headers: Iterable[str] = (),
        now: datetime | None = None,
    ) -> SignedRequest:
        """Sign a request in the Authorization header; `key` None addresses the bucket (e.g. list).

        `params` values None or "" are sent bare (`?uploads`). `headers` are sent as given and the
        ones in the signed set (x-oss-*, Content-Type, Content-MD5, plus V4 additional headers) are
        signed. Returns the complete header set to send (input headers + auth headers).
        """
        if method not in REQUEST_METHODS:
            raise InvalidOption(f"method must be one of {', '.join(sorted(REQUEST_METHODS))}")
        if key is not None:
            validate_key(key)
        params = dict(params or {})
        headers = check_headers(headers or {})
        for name, value in params.items():
            check_text_option(f"query parameter {name!r}", name)
            if value is not None:
                check_text_option(f"query parameter {name!r}", value or "x")
        moment = truncate_to_second(now or datetime.now(timezone.utc))
        out_headers = self._header_auth.add_auth(method, key, params, headers, additional_headers, moment)
        url = self._base_url + (encode_key_path(key) if key else "")
        query = "&".join(f"{quote_component(name)}={quote_component(value)}" if value else quote_component(name)
                         for name, value in params.items())
        return SignedRequest(method, f"{url}?{query}" if query else url, out_headers)
