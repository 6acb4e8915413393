"""What signing takes and gives: credentials, URL options, signed URLs and requests (validated on construction)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from shared.keys import InvalidOption
from shared.validity import Validity

PRESIGN_METHODS = frozenset({"GET", "HEAD", "PUT"})
REQUEST_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})
STORAGE_CLASSES = frozenset({"Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"})
TRAFFIC_LIMIT_MIN = 819200  # bit/s, 100 KB/s
TRAFFIC_LIMIT_MAX = 838860800  # bit/s, 100 MB/s

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Header values: printable ASCII and tab; anything else is ambiguous on the wire.
# All patterns here are used with fullmatch (a `$` would accept a trailing newline).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_VPC_ID = re.compile(r"vpc-[a-z0-9]{1,64}")


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
            check_text_option(name, getattr(self, name))
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
            max_mask = check_ip(self.source_ip)
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


def check_ip(address: str) -> int:
    """Validate an IPv4/IPv6 address; return the largest valid prefix length."""
    import ipaddress  # only needed for source-bound URLs; keeps the cold import small

    if not isinstance(address, str):
        raise InvalidOption("source_ip must be a string")
    try:
        return ipaddress.ip_address(address).max_prefixlen
    except ValueError:
        raise InvalidOption("source_ip must be an IPv4 or IPv6 address") from None


def check_text_option(name: str, value: object) -> None:
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


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidOption("header names must be HTTP tokens")
        if name.lower() in seen:
            raise InvalidOption(f"header {name!r} given twice")
        seen.add(name.lower())
        _check_header_value(f"header {name!r}", value)
    return dict(headers)


def without(headers: Mapping[str, str], *lower_names: str) -> dict[str, str]:
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
NO_HEADERS: Mapping[str, str] = MappingProxyType({})
