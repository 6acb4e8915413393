"""Where a signed request goes: region, internal, acceleration, custom-domain and path-style endpoints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shared.keys import InvalidOption
from shared.signing.model import check_ip

_REGION = re.compile(r"[a-z0-9][a-z0-9-]*[a-z0-9]")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


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
        check_region(region)
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


def _scheme(secure: bool) -> Literal["https", "http"]:
    return "https" if secure else "http"


def check_region(region: str) -> None:
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise InvalidOption("region must be a bare region id such as cn-hangzhou")


def _is_ip_or_localhost(host: str) -> bool:
    name = _host_without_port(host)
    if name == "localhost":
        return True
    try:
        check_ip(name)
    except InvalidOption:
        return False
    return True


def _host_without_port(host: str) -> str:
    if host.startswith("["):  # [IPv6]:port
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
