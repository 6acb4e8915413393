"""Caller parameters -> what to sign: method, validity, endpoint, signature version and URL options.

Shared by the sign function (query string or JSON, batch-wide and per key) and the download function
(disposition / filename). Query-string values arrive as strings, JSON values may be typed; both are
accepted. Every bad value is an ``InvalidParameter`` (400) naming the parameter and what it accepts;
PUT when SIGN_ALLOW_PUT is off is a 403.

Parameters: method (GET | HEAD | PUT), expires (seconds), disposition (inline | attachment), filename,
content_type, cache_control, version_id, process (only URL_PROCESS_OPERATIONS), traffic_limit (bit/s),
bind_ip (bool), source_ip, subnet_mask, domain (default | custom | accelerate), scheme (https | http),
version (v4 | v1), proxy (bool: a /download proxy link instead of an OSS URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared import config as config_module
from shared.config import Settings
from shared.disposition import content_disposition
from shared.errors import Forbidden, InvalidParameter
from shared.keys import SigningError
from shared.numbers import ascii_int_or_none
from shared.processing import check_process
from shared.signing import Endpoint, PresignOptions
from shared.validity import ValidityPolicy

if TYPE_CHECKING:
    from shared.validity import Version

EndpointStyle = Literal["virtual", "cname", "path"]

OPTION_NAMES = frozenset({
    "method", "expires", "disposition", "filename", "content_type", "cache_control", "version_id", "process",
    "traffic_limit", "bind_ip", "source_ip", "subnet_mask", "domain", "scheme", "version", "proxy",
})  # fmt: skip
PROXY_OPTION_NAMES = frozenset({"method", "expires", "disposition", "filename", "proxy"})
MAX_EXPIRES_DIGITS = 9


@dataclass(frozen=True)
class UrlSpec:
    """Everything needed to sign one key, except the key."""

    method: str
    expires: int
    version: Version
    endpoint: Endpoint
    options: PresignOptions
    proxy: bool = False
    disposition: str | None = None
    filename: str | None = None

    def link_options(self) -> dict[str, str | None]:
        return {"disposition": self.disposition, "filename": self.filename}


def validity_policy(settings: Settings) -> ValidityPolicy:
    return ValidityPolicy(floor_seconds=settings.urls.min_expires, max_seconds=settings.urls.max_expires)


def check_unknown(values: Mapping[str, Any], allowed: frozenset[str], where: str = "") -> None:
    unknown = sorted(name for name in values if name not in allowed)
    if unknown:
        raise InvalidParameter(f"{where}unknown parameter {str(unknown[0])[:40]!r}; accepted: "
                               + ", ".join(sorted(allowed)))


def parse_spec(values: Mapping[str, Any], settings: Settings, *, source_ip: str | None, where: str = "") -> UrlSpec:
    """Validate ``values`` (option name -> value) into a UrlSpec; ``where`` prefixes error messages."""
    check_unknown(values, OPTION_NAMES, where)
    reader = _Reader(values, where)
    proxy = reader.boolean("proxy", False)
    method = reader.choice("method", ("GET", "HEAD", "PUT"), "GET", upper=True)
    if method == "PUT" and not settings.sign.allow_put:
        raise Forbidden(f"{where}PUT URLs are not enabled on this deployment")
    expires = reader.integer("expires", settings.urls.default_expires, 1, 10**MAX_EXPIRES_DIGITS - 1)
    version: Version = "v1" if reader.choice("version", ("v4", "v1"), settings.urls.signature_version) == "v1" else "v4"
    scheme = reader.choice("scheme", ("https", "http"), "") or None
    domain = reader.choice("domain", ("default", "custom", "accelerate"), "default")
    disposition = reader.choice("disposition", ("inline", "attachment"), "") or None
    filename = reader.text("filename")
    if filename and not disposition:
        disposition = "attachment"
    if proxy:
        extra = sorted(name for name in values if name not in PROXY_OPTION_NAMES and values[name] not in (None, ""))
        if extra:
            raise InvalidParameter(f"{where}proxy links carry only disposition and filename; {extra[0]!r} "
                                   "cannot be combined with proxy=true")
        if method == "PUT":
            raise InvalidParameter(f"{where}proxy links are for downloads (method GET or HEAD)")
        if not (settings.download.link_secret and settings.download.base_url):
            raise InvalidParameter(f"{where}proxy links are not enabled on this deployment")
    source_ip = _source_binding(reader, source_ip, where)
    content_type = reader.text("content_type")
    if method == "PUT" and (disposition or reader.text("cache_control")):
        raise InvalidParameter(f"{where}disposition, filename and cache_control apply to downloads, not PUT")
    try:
        disposition_value = content_disposition(filename, disposition) if disposition else None
        upload = method == "PUT"
        options = PresignOptions(
            response_content_disposition=None if upload else disposition_value,
            response_content_type=None if upload else content_type,
            response_cache_control=None if upload else reader.text("cache_control"),
            version_id=reader.text("version_id"),
            process=_process(reader, settings, where),
            traffic_limit=reader.integer("traffic_limit", None, 0, 10**10),
            source_ip=source_ip,
            subnet_mask=reader.integer("subnet_mask", None, 0, 128),
            content_type=content_type if upload else None,
        )
        options.check_method(method)
    except SigningError as error:
        raise InvalidParameter(f"{where}{error.message}") from None
    if version == "v1" and not proxy:
        check_v1_options(options, where)
    endpoint = url_endpoint(settings, domain=domain, scheme=scheme, where=where)
    return UrlSpec(method=method, expires=expires, version=version, endpoint=endpoint, options=options, proxy=proxy,
                   disposition=disposition, filename=filename)


def url_endpoint(settings: Settings, *, domain: str = "default", scheme: str | None = None,
                 where: str = "") -> Endpoint:
    """Where the URLs point: the public endpoint, the custom domain (CNAME) or the acceleration endpoint."""
    oss = settings.oss
    if domain == "custom":
        if oss.custom_domain is None:
            raise InvalidParameter(f"{where}domain=custom needs OSS_CUSTOM_DOMAIN to be configured")
        custom = oss.custom_domain
        return signing_endpoint(custom, cname=True, scheme=scheme or _default_scheme(settings, custom))
    if domain == "accelerate":
        if oss.accelerate_endpoint is None:
            raise InvalidParameter(f"{where}domain=accelerate needs OSS_ACCELERATE_ENDPOINT to be configured")
        endpoint = oss.accelerate_endpoint
        return signing_endpoint(endpoint, scheme=scheme or _default_scheme(settings, endpoint))
    endpoint = oss.public_endpoint
    return signing_endpoint(endpoint, path_style=oss.uses_path_style(endpoint),
                            scheme=scheme or _default_scheme(settings, endpoint))


def signing_endpoint(endpoint: config_module.ConfiguredHost | Endpoint, *, path_style: bool = False,
                     cname: bool = False, scheme: str | None = None) -> Endpoint:
    """A configured endpoint (host, optional scheme) as the signer's ``Endpoint`` (host, scheme, style)."""
    if isinstance(endpoint, Endpoint):
        if scheme and scheme != endpoint.scheme:
            # A caller's or configuration's scheme is a str; Endpoint.__post_init__ refuses anything but https/http.
            return Endpoint(endpoint.host, scheme, endpoint.style)  # type: ignore[arg-type]
        return endpoint
    chosen = scheme or endpoint.scheme or "https"
    style: EndpointStyle = "cname" if cname else ("path" if path_style else "virtual")
    return Endpoint(endpoint.host, chosen, style)  # type: ignore[arg-type]  # chosen: str, as above


def check_v1_options(options: PresignOptions, where: str = "") -> None:
    """Refuse (400) a value with ``&`` in a V1 URL: V1 signs sub-resource values raw, joined with ``&``, so the
    signature would also cover the same URL with that value split into an extra, smuggled sub-resource."""
    for name, value in options.query_params().items():
        if "&" in value:
            raise InvalidParameter(f"{where}{name} must not contain '&' in a V1 URL; use version v4")


def download_options(query: Mapping[str, str], where: str = "") -> tuple[str | None, str | None, str | None]:
    """(disposition, filename, Content-Disposition value) from the download function's query."""
    reader = _Reader(query, where)
    disposition = reader.choice("disposition", ("inline", "attachment"), "") or None
    filename = reader.text("filename")
    if filename and not disposition:
        disposition = "attachment"
    if not disposition:
        return None, None, None
    try:
        return disposition, filename, content_disposition(filename, disposition)
    except SigningError as error:
        raise InvalidParameter(f"{where}{error.message}") from None


def _process(reader: _Reader, settings: Settings, where: str) -> str | None:
    """The caller's ``process``, only with operations that cannot read another object (shared/processing.py)."""
    value = reader.text("process")
    if value is None:
        return None
    return check_process(value, settings.urls.process_operations, where)


def reach_scheme(settings: Settings, endpoint: config_module.ConfiguredHost) -> str:
    """How the functions and the SDKs reach a configured endpoint: its own scheme, else URL_SCHEME, else https.

    (Generated URLs put URL_SCHEME first instead: see _default_scheme.)"""
    return endpoint.scheme or settings.urls.scheme or "https"


def _default_scheme(settings: Settings, endpoint: Any) -> str:
    return settings.urls.scheme or getattr(endpoint, "scheme", None) or "https"


def _source_binding(reader: _Reader, caller_ip: str | None, where: str) -> str | None:
    bind = reader.boolean("bind_ip", False)
    explicit = reader.text("source_ip")
    if bind and explicit:
        raise InvalidParameter(f"{where}give either bind_ip=true or source_ip, not both")
    if bind:
        if not caller_ip:
            raise InvalidParameter(f"{where}bind_ip=true but the caller's IP address is unknown")
        return caller_ip
    if explicit is None and reader.has("subnet_mask"):
        raise InvalidParameter(f"{where}subnet_mask needs bind_ip=true or source_ip")
    return explicit


class _Reader:
    """Typed access to string-or-JSON values with uniform error messages."""

    def __init__(self, values: Mapping[str, Any], where: str) -> None:
        self.values = values
        self.where = where

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def _fail(self, name: str, expected: str) -> InvalidParameter:
        return InvalidParameter(f"{self.where}{name} must be {expected}")

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._fail(name, "a string")
        if len(value) > 1024:
            raise self._fail(name, "at most 1024 characters")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str, *, upper: bool = False) -> str:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            try:
                return config_module.parse_choice(value, options, upper=upper)
            except ValueError:
                pass
        raise self._fail(name, "one of " + ", ".join(options))

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return config_module.parse_boolean(value)
            except ValueError:
                pass
        raise self._fail(name, "true or false")

    def integer(self, name: str, default: int | None, low: int, high: int) -> Any:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise self._fail(name, "an integer")
        if isinstance(value, str):
            value = ascii_int_or_none(value.strip(), max_digits=len(str(high)))
            if value is None:
                raise self._fail(name, "an integer")
        if not isinstance(value, int):
            raise self._fail(name, "an integer")
        if not low <= value <= high:
            raise self._fail(name, f"from {low} to {high}")
        return value
