"""OSS request signing: pre-signed URLs and Authorization headers, V4 and V1.

Pure: stdlib only (hmac, hashlib, urllib.parse), no network, no SDK. Layout follows botocore's
auth.py and the OSS SDK signers: small functions for each canonical piece, then the string to
sign, then the signature; `Signer` binds them to one (credentials, endpoint, bucket, region,
version) and precomputes everything that does not depend on the key, so that signing a batch
costs one SHA-256 and one HMAC per V4 URL (one HMAC-SHA1 per V1 URL).

Wire rules: docs/reference oss-signing.md (V4: sections 3-4, V1: sections 1-2, encoding: 5).

    V4 canonical request = VERB \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n
                           AdditionalHeaders \\n UNSIGNED-PAYLOAD
       string to sign    = OSS4-HMAC-SHA256 \\n <x-oss-date> \\n <scope> \\n hex(sha256(canonical request))
       signature         = hex(hmac_sha256(signing_key(secret, date, region, product), string to sign))
    V1 string to sign    = VERB \\n Content-MD5 \\n Content-Type \\n <Date | Expires> \\n
                           CanonicalizedOSSHeaders CanonicalizedResource
       signature         = base64(hmac_sha1(secret, string to sign))
"""

from __future__ import annotations

import binascii
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from hashlib import sha256
from types import MappingProxyType
from typing import Literal

from shared.keys import (
    CredentialsExpiring,
    ExpiresTooShort,
    InvalidBucket,
    InvalidExpires,
    InvalidKey,
    InvalidOption,
    KeyOutsideScope,
    SigningError,
    encode_key_path,
    escape_dot_segments,
    quote_component,
    quote_path,
    validate_key,
)
from shared.validity import Validity, ValidityPolicy, Version, effective_validity, truncate_to_second

__all__ = [
    "V1_SUBRESOURCES",
    "Credentials",
    "CredentialsExpiring",
    "Endpoint",
    "ExpiresTooShort",
    "InvalidBucket",
    "InvalidExpires",
    "InvalidKey",
    "InvalidOption",
    "KeyOutsideScope",
    "PresignOptions",
    "PresignedUrl",
    "SignedRequest",
    "Signer",
    "SigningError",
    "presign_url",
]

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
PRESIGN_METHODS = frozenset({"GET", "HEAD", "PUT"})
REQUEST_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})
STORAGE_CLASSES = frozenset({"Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"})
TRAFFIC_LIMIT_MIN = 819200  # bit/s, 100 KB/s
TRAFFIC_LIMIT_MAX = 838860800  # bit/s, 100 MB/s

# Query parameters V1 signs (as sub-resources). This is oss2 2.19.1's set: what the service has
# accepted from oss2 for years; alibabacloud-oss-v2 signs a shorter list (no x-oss-process).
V1_SUBRESOURCES = frozenset({
    "acl", "append", "asyncFetch", "bucketArchiveDirectRead", "bucketInfo", "callback", "callback-var",
    "cname", "comp", "continuation-token", "cors", "delete", "encryption", "endTime", "group",
    "httpsConfig", "inventory", "inventoryId", "lifecycle", "link", "live", "location", "logging",
    "metaQuery", "objectInfo", "objectMeta", "partNumber", "policy", "position", "qos", "qosInfo",
    "qosRequester", "redundancyTransition", "referer", "regionList", "replication",
    "replicationLocation", "replicationProgress", "requestPayment", "requesterQosInfo",
    "resourceGroup", "resourcePool", "resourcePoolBuckets", "resourcePoolInfo",
    "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires", "restore",
    "security-token", "sequential", "startTime", "stat", "status", "style", "styleName", "symlink",
    "tagging", "transferAcceleration", "uploadId", "uploads", "versionId", "versioning", "versions",
    "vod", "website", "worm", "wormExtend", "wormId", "accessPoint", "accessPointPolicy",
    "publicAccessBlock", "x-oss-access-point-name", "x-oss-ac-forward-allow", "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-async-process", "x-oss-process",
    "x-oss-redundancy-transition-taskid", "x-oss-request-payer", "x-oss-target-redundancy-type",
    "x-oss-traffic-limit", "x-oss-write-get-object-response",
})  # fmt: skip

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]*[a-z0-9]")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Header values: printable ASCII and tab; anything else is ambiguous on the wire.
# All patterns here are used with fullmatch (a `$` would accept a trailing newline).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_VPC_ID = re.compile(r"vpc-[a-z0-9]{1,64}")
_V1_QUERY_SEPARATORS = re.compile(r"[&?]")


# =============================================================================================
# Inputs: credentials, endpoint, options
# =============================================================================================


@dataclass(frozen=True)
class Credentials:
    """AccessKey pair, optionally STS (token + expiration). Secrets never appear in repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise InvalidOption("credentials need an AccessKey id and secret")
        if _CONTROL_CHARS.search(self.access_key_id) or "/" in self.access_key_id:
            raise InvalidOption("AccessKey id contains forbidden characters")


@dataclass(frozen=True)
class Endpoint:
    """Where requests go and how the bucket appears in the URL.

    style "virtual": https://<bucket>.<host>/<key>   (region, internal and acceleration endpoints)
    style "cname":   https://<host>/<key>            (custom domain bound to one bucket)
    style "path":    http://<host>/<bucket>/<key>    (IP / localhost endpoints, e.g. the local emulator)
    The bucket is always part of what is signed, whatever the style.
    """

    host: str
    scheme: Literal["https", "http"] = "https"
    style: Literal["virtual", "cname", "path"] = "virtual"

    def __post_init__(self) -> None:
        if self.scheme not in ("https", "http"):
            raise InvalidOption("endpoint scheme must be https or http")
        if self.style not in ("virtual", "cname", "path"):
            raise InvalidOption("endpoint style must be virtual, cname or path")
        if not _HOST.fullmatch(self.host):
            raise InvalidOption("endpoint host must be a host name or IP, with an optional port")

    @classmethod
    def for_region(cls, region: str, *, internal: bool = False, secure: bool = True) -> Endpoint:
        """`oss-<region>.aliyuncs.com`, or `oss-<region>-internal.aliyuncs.com` from inside the VPC."""
        _check_region(region)
        suffix = "-internal" if internal else ""
        return cls(f"oss-{region}{suffix}.aliyuncs.com", _scheme(secure), "virtual")

    @classmethod
    def accelerate(cls, *, overseas: bool = False, secure: bool = True) -> Endpoint:
        """Transfer acceleration: `oss-accelerate(-overseas).aliyuncs.com`, virtual-host style."""
        host = "oss-accelerate-overseas.aliyuncs.com" if overseas else "oss-accelerate.aliyuncs.com"
        return cls(host, _scheme(secure), "virtual")

    @classmethod
    def custom_domain(cls, domain: str, *, secure: bool = True) -> Endpoint:
        return cls(domain, _scheme(secure), "cname")

    @classmethod
    def path_style(cls, host: str, *, secure: bool = False) -> Endpoint:
        """`host` is `ip:port` or `localhost:port`; the bucket goes in the path."""
        return cls(host, _scheme(secure), "path")

    @classmethod
    def from_url(cls, url: str, *, cname: bool = False) -> Endpoint:
        """`https://oss-cn-hangzhou.aliyuncs.com` -> virtual, `http://127.0.0.1:9000` -> path style."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "https", url
        host = rest.rstrip("/")
        if cname:
            style: Literal["virtual", "cname", "path"] = "cname"
        else:
            style = "path" if _is_ip_or_localhost(host) else "virtual"
        return cls(host, scheme.lower(), style)  # type: ignore[arg-type]

    def base_url(self, bucket: str) -> str:
        """URL up to and including the `/` that precedes the encoded key."""
        if self.style == "virtual":
            return f"{self.scheme}://{bucket}.{self.host}/"
        if self.style == "cname":
            return f"{self.scheme}://{self.host}/"
        return f"{self.scheme}://{self.host}/{bucket}/"


@dataclass(frozen=True)
class PresignOptions:
    """Optional parts of a pre-signed URL, validated on construction.

    Query options (GET/HEAD): response_* overrides, version_id, process (x-oss-process);
    traffic_limit (bit/s) and the source binding (source_ip, subnet_mask, vpc_id, forward_allow)
    apply to every method. Upload headers (PUT only): content_type, metadata, storage_class; they
    are signed and returned with the URL, and the uploader must send them exactly.
    """

    response_content_disposition: str | None = None
    response_content_type: str | None = None
    response_cache_control: str | None = None
    version_id: str | None = None
    process: str | None = None
    traffic_limit: int | None = None
    source_ip: str | None = None
    subnet_mask: int | None = None
    vpc_id: str | None = None
    forward_allow: bool | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    storage_class: str | None = None

    def __post_init__(self) -> None:
        for name in ("response_content_disposition", "response_content_type", "response_cache_control",
                     "version_id", "process"):  # fmt: skip
            _check_text_option(name, getattr(self, name))
        self._check_traffic_limit()
        self._check_source_binding()
        if self.content_type is not None:
            _check_header_value("content_type", self.content_type)
        if self.storage_class is not None and self.storage_class not in STORAGE_CLASSES:
            raise InvalidOption(f"storage_class must be one of {', '.join(sorted(STORAGE_CLASSES))}")
        object.__setattr__(self, "metadata", MappingProxyType(_normalise_metadata(self.metadata)))

    def _check_traffic_limit(self) -> None:
        limit = self.traffic_limit
        if limit is None:
            return
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise InvalidOption("traffic_limit must be an integer (bit/s)")
        if not TRAFFIC_LIMIT_MIN <= limit <= TRAFFIC_LIMIT_MAX:
            raise InvalidOption(f"traffic_limit must be from {TRAFFIC_LIMIT_MIN} to {TRAFFIC_LIMIT_MAX} bit/s")

    def _check_source_binding(self) -> None:
        if self.source_ip is None:
            if self.subnet_mask is not None or self.forward_allow is not None:
                raise InvalidOption("subnet_mask and forward_allow need source_ip")
        else:
            max_mask = _check_ip(self.source_ip)
            mask = self.subnet_mask
            if mask is not None and (
                not isinstance(mask, int) or isinstance(mask, bool) or not 0 <= mask <= max_mask
            ):
                raise InvalidOption(f"subnet_mask must be an integer from 0 to {max_mask}")
        if self.forward_allow is not None and not isinstance(self.forward_allow, bool):
            raise InvalidOption("forward_allow must be a boolean")
        if self.vpc_id is not None and (not isinstance(self.vpc_id, str) or not _VPC_ID.fullmatch(self.vpc_id)):
            raise InvalidOption("vpc_id must look like vpc-<lowercase letters and digits>")

    def query_params(self) -> dict[str, str]:
        """Raw (unencoded) query parameters these options add to the URL."""
        candidates = (
            ("response-content-disposition", self.response_content_disposition),
            ("response-content-type", self.response_content_type),
            ("response-cache-control", self.response_cache_control),
            ("versionId", self.version_id),
            ("x-oss-process", self.process),
            ("x-oss-traffic-limit", None if self.traffic_limit is None else str(self.traffic_limit)),
            ("x-oss-ac-source-ip", self.source_ip),
            ("x-oss-ac-subnet-mask", None if self.subnet_mask is None else str(self.subnet_mask)),
            ("x-oss-ac-vpc-id", self.vpc_id),
            ("x-oss-ac-forward-allow", None if self.forward_allow is None else str(self.forward_allow).lower()),
        )
        return {name: value for name, value in candidates if value is not None}

    def upload_headers(self) -> dict[str, str]:
        """Headers the uploader must send with a PUT (all of them are signed)."""
        headers: dict[str, str] = {}
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        for name, value in self.metadata.items():
            headers[f"x-oss-meta-{name}"] = value
        if self.storage_class is not None:
            headers["x-oss-storage-class"] = self.storage_class
        return headers

    def check_method(self, method: str) -> None:
        if method == "PUT":
            if any((self.response_content_disposition, self.response_content_type,
                    self.response_cache_control, self.version_id, self.process)):  # fmt: skip
                raise InvalidOption("response overrides, versionId and x-oss-process do not apply to PUT")
        elif self.content_type is not None or self.metadata or self.storage_class is not None:
            raise InvalidOption("content_type, metadata and storage_class only apply to PUT")


# =============================================================================================
# Outputs
# =============================================================================================


@dataclass(frozen=True, slots=True)
class PresignedUrl:
    """A signed URL, the headers the client must send with it, and its validity.

    The URL is a bearer credential (signature, maybe an STS token): it stays out of repr.
    """

    url: str = field(repr=False)
    method: str
    headers: Mapping[str, str]
    validity: Validity

    @property
    def expires_at(self) -> datetime:
        return self.validity.expires_at

    @property
    def expires_in(self) -> int:
        return self.validity.expires_in

    @property
    def clamped(self) -> bool:
        return self.validity.clamped

    @property
    def clamp_reason(self) -> str | None:
        return self.validity.clamp_reason

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "method": self.method, "headers": dict(self.headers), **self.validity.to_dict()}


@dataclass(frozen=True)
class SignedRequest:
    """A request signed in the Authorization header: send exactly this URL and these headers."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)


# =============================================================================================
# V4 building blocks
# =============================================================================================


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


# =============================================================================================
# V1 building blocks
# =============================================================================================


def is_v1_ambiguous_key(key: str) -> bool:
    """True if a V1 signature for ``key`` would also sign another request: V1 signs the key raw, so
    ``a?uploadId=1`` is signed exactly as object ``a`` with the sub-resource ``uploadId=1`` (ListParts)
    and ``?acl`` as the bucket's ACL. oss2 refuses keys starting with ``?`` for the same reason.

    Every name after the first ``?`` counts, not only the first (``a.txt?aaa&acl&b`` holds ``acl``), and
    a later ``?`` separates names too: the request's path may end at any ``?`` of the key."""
    _, question, rest = key.partition("?")
    if not question:
        return False
    # The service's own list is not published in full: the SDKs' names and any x-oss-* name count.
    for part in _V1_QUERY_SEPARATORS.split(rest):
        name = part.split("=", 1)[0]
        if name in V1_SUBRESOURCES or name.startswith("x-oss-") or name == "cloudboxes":
            return True
    return False


def _refuse_v1_ambiguous(key: str) -> None:
    if "?" in key and is_v1_ambiguous_key(key):
        raise InvalidKey("this key cannot be signed with V1 (it reads as a sub-resource request); use V4")


def v1_canonical_resource(
    bucket: str | None,
    key: str | None,
    params: Mapping[str, str | None] = MappingProxyType({}),
    subresources: frozenset[str] = V1_SUBRESOURCES,
) -> str:
    """`/bucket/raw key?sub=value&bare` — raw (decoded) key and values, sorted sub-resources."""
    path = f"/{bucket}/{key or ''}" if bucket else "/"
    return path + v1_subresources(params, subresources)


def v1_subresources(params: Mapping[str, str | None], subresources: frozenset[str] = V1_SUBRESOURCES) -> str:
    """`?a=1&b` from the signed sub-resources in `params`, or "" if there are none."""
    signed = sorted((name, value or "") for name, value in params.items() if name in subresources)
    if not signed:
        return ""
    return "?" + "&".join(f"{name}={value}" if value else name for name, value in signed)


def v1_canonical_oss_headers(headers: Mapping[str, str]) -> str:
    lines = sorted((name.lower(), value) for name, value in headers.items() if name.lower().startswith("x-oss-"))
    return "".join(f"{name}:{value}\n" for name, value in lines)


def v1_string_to_sign(
    method: str, content_md5: str, content_type: str, date: str, oss_headers: str, resource: str
) -> str:
    return f"{method}\n{content_md5}\n{content_type}\n{date}\n{oss_headers}{resource}"


def v1_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.digest(secret.encode("utf-8"), string_to_sign.encode("utf-8"), "sha1")
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def v1_quote_signature(signature: str) -> str:
    """Base64 in a query value: `+`, `/`, `=` all percent-encoded (same as quote(safe=''))."""
    return signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """RFC 1123 `Wed, 28 Dec 2022 10:27:41 GMT`, independent of the process locale."""
    return (
        f"{_WEEKDAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


# =============================================================================================
# Signer: the fast path
# =============================================================================================


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
        if version not in ("v4", "v1"):
            raise InvalidOption("signature version must be 'v4' or 'v1'")
        if not isinstance(bucket, str) or not _BUCKET_NAME.fullmatch(bucket):
            raise InvalidBucket("bucket name must be 3-63 lowercase letters, digits or hyphens")
        _check_region(region)
        self.credentials = credentials
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.version: Version = version
        self.product = product
        self.policy = policy or ValidityPolicy()
        self._base_url = endpoint.base_url(bucket)
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
        headers = MappingProxyType(options.upload_headers()) if method == "PUT" else _NO_HEADERS
        build = self._v4_url_signer if self.version == "v4" else self._v1_url_signer
        result = (build(method, options.query_params(), headers, validity), headers, validity)
        # `options` is compared by value (frozen); a new equal object reuses the prepared signer.
        self._prepared = (method, expires, now, options, result)
        return result

    def _v4_url_signer(
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
        url_head = self._base_url
        url_tail = f"?{query}&x-oss-signature="

        def sign_key(key: str) -> str:
            encoded = quote_path(key)  # the canonical URI keeps dot segments, the URL path escapes them
            canonical_request = request_head + encoded + request_tail
            string_to_sign = sts_head + sha256(canonical_request.encode("utf-8")).hexdigest()
            signature = hmac.digest(signing_key, string_to_sign.encode("ascii"), "sha256").hex()
            return url_head + escape_dot_segments(encoded) + url_tail + signature

        return sign_key

    def _v1_url_signer(
        self, method: str, params: dict[str, str], headers: Mapping[str, str], validity: Validity
    ) -> Callable[[str], str]:
        """Everything but the key is fixed: returns key -> URL (one HMAC-SHA1, one quote)."""
        credentials = self.credentials
        expires_at = str(int(validity.expires_at.timestamp()))
        signed_params = dict(params)
        if credentials.security_token:
            signed_params["security-token"] = credentials.security_token
        lower = {name.lower(): value for name, value in headers.items()}
        sts_head = v1_string_to_sign(
            method, lower.get("content-md5", ""), lower.get("content-type", ""), expires_at,
            v1_canonical_oss_headers(headers), f"/{self.bucket}/",
        )  # fmt: skip
        sts_tail = v1_subresources(signed_params)
        secret = credentials.access_key_secret.encode("utf-8")
        query = [f"{v4_encode(name)}={v4_encode(value)}" for name, value in params.items()]
        query.append(f"OSSAccessKeyId={v4_encode(credentials.access_key_id)}")
        query.append(f"Expires={expires_at}")
        if credentials.security_token:
            query.append(f"security-token={v4_encode(credentials.security_token)}")
        url_head = self._base_url
        url_tail = "?" + "&".join(query) + "&Signature="

        def sign_key(key: str) -> str:
            _refuse_v1_ambiguous(key)
            string_to_sign = sts_head + key + sts_tail
            digest = hmac.digest(secret, string_to_sign.encode("utf-8"), "sha1")
            signature = binascii.b2a_base64(digest, newline=False).decode("ascii")
            return url_head + encode_key_path(key) + url_tail + v1_quote_signature(signature)

        return sign_key

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
        headers = _check_headers(headers or {})
        for name, value in params.items():
            _check_text_option(f"query parameter {name!r}", name)
            if value is not None:
                _check_text_option(f"query parameter {name!r}", value or "x")
        moment = truncate_to_second(now or datetime.now(timezone.utc))
        if self.version == "v4":
            out_headers = self._v4_header_auth(method, key, params, headers, additional_headers, moment)
        else:
            if key is not None:
                _refuse_v1_ambiguous(key)
            out_headers = self._v1_header_auth(method, key, params, headers, moment)
        url = self._base_url + (encode_key_path(key) if key else "")
        query = "&".join(
            f"{v4_encode(name)}={v4_encode(value)}" if value else v4_encode(name) for name, value in params.items()
        )
        return SignedRequest(method, f"{url}?{query}" if query else url, out_headers)

    def _v4_header_auth(
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
        headers = _without(headers, "x-oss-date", "x-oss-security-token", "authorization")
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

    def _v1_header_auth(
        self,
        method: str,
        key: str | None,
        params: Mapping[str, str | None],
        headers: dict[str, str],
        moment: datetime,
    ) -> dict[str, str]:
        credentials = self.credentials
        headers = _without(headers, "x-oss-security-token", "authorization")
        if not any(name.lower() == "date" for name in headers):
            headers["Date"] = http_date(moment)
        if credentials.security_token:
            headers["x-oss-security-token"] = credentials.security_token
        lower = {name.lower(): value for name, value in headers.items()}
        string_to_sign = v1_string_to_sign(
            method,
            lower.get("content-md5", ""),
            lower.get("content-type", ""),
            lower.get("x-oss-date") or lower["date"],
            v1_canonical_oss_headers(headers),
            v1_canonical_resource(self.bucket, key or "", params),
        )
        signature = v1_signature(credentials.access_key_secret, string_to_sign)
        headers["Authorization"] = f"OSS {credentials.access_key_id}:{signature}"
        return headers


# =============================================================================================
# Single-call API
# =============================================================================================


def presign_url(
    credentials: Credentials,
    endpoint: Endpoint,
    bucket: str,
    key: str,
    *,
    region: str,
    expires: int,
    version: Version = "v4",
    method: str = "GET",
    options: PresignOptions | None = None,
    now: datetime | None = None,
    policy: ValidityPolicy | None = None,
) -> PresignedUrl:
    """One URL in one call. To sign many keys, build a `Signer` once and use `presign_many`."""
    signer = _cached_signer(credentials, endpoint, bucket, region, version, policy)
    return signer.presign(key, expires=expires, method=method, options=options, now=now)


@lru_cache(maxsize=32)
def _cached_signer(
    credentials: Credentials,
    endpoint: Endpoint,
    bucket: str,
    region: str,
    version: Version,
    policy: ValidityPolicy | None,
) -> Signer:
    # Keyed on the frozen inputs (secret included, in memory only): repeated single calls reuse
    # one Signer and its prepared canonical query, as a caller holding a Signer would.
    return Signer(credentials, endpoint, bucket, region=region, version=version, policy=policy)


# =============================================================================================
# Validation helpers
# =============================================================================================


def _scheme(secure: bool) -> Literal["https", "http"]:
    return "https" if secure else "http"


def _check_region(region: str) -> None:
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise InvalidOption("region must be a bare region id such as cn-hangzhou")


def _is_ip_or_localhost(host: str) -> bool:
    name = _host_without_port(host)
    if name == "localhost":
        return True
    try:
        _check_ip(name)
    except InvalidOption:
        return False
    return True


def _host_without_port(host: str) -> str:
    if host.startswith("["):  # [IPv6]:port
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _check_ip(address: str) -> int:
    """Validate an IPv4/IPv6 address; return the largest valid prefix length."""
    import ipaddress  # only needed for source-bound URLs; keeps the cold import small

    if not isinstance(address, str):
        raise InvalidOption("source_ip must be a string")
    try:
        return ipaddress.ip_address(address).max_prefixlen
    except ValueError:
        raise InvalidOption("source_ip must be an IPv4 or IPv6 address") from None


def _check_text_option(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise InvalidOption(f"{name} must be a non-empty string")
    if len(value) > 4096 or _CONTROL_CHARS.search(value):
        raise InvalidOption(f"{name} must be at most 4096 characters without control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOption(f"{name} is not valid UTF-8") from None


def _check_header_value(name: str, value: object) -> None:
    if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value) or len(value) > 8192:
        raise InvalidOption(f"{name} must be printable ASCII")


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidOption("header names must be HTTP tokens")
        if name.lower() in seen:
            raise InvalidOption(f"header {name!r} given twice")
        seen.add(name.lower())
        _check_header_value(f"header {name!r}", value)
    return dict(headers)


def _without(headers: Mapping[str, str], *lower_names: str) -> dict[str, str]:
    """A copy of `headers` minus the ones the signer sets itself (any case)."""
    return {name: value for name, value in headers.items() if name.lower() not in lower_names}


def _normalise_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """`x-oss-meta-*` names are case-insensitive on OSS: lowercase them, reject duplicates."""
    if not isinstance(metadata, Mapping):
        raise InvalidOption("metadata must be a mapping of names to values")
    normalised: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidOption("metadata names must be HTTP tokens (letters, digits, '-', ...)")
        lower = name.lower().removeprefix("x-oss-meta-")
        if lower in normalised:
            raise InvalidOption(f"metadata {lower!r} given twice")
        _check_header_value(f"metadata {lower!r}", value)
        normalised[lower] = value
    return dict(sorted(normalised.items()))


NO_OPTIONS = PresignOptions()  # after the helpers it validates with
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
