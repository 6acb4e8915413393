"""What the portal page is told and allowed: its sign-in configuration and its Content-Security-Policy.

The page is a public client: it holds no secret, and what the caller signs in with stays in the browser's memory
or sessionStorage. Its Content-Security-Policy lets it talk only to its own origin (the API), the bucket's OSS
endpoint and the OIDC issuer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.config import Settings
from shared.url_options import reach_scheme


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def oss_sources(settings: Settings) -> list[str]:
    """Where ali-oss in the page connects: the bucket's virtual host on the public endpoint, or for an endpoint
    given as an IP (the local emulator) the endpoint itself, addressed path-style (ali-oss ``sldEnable``)."""
    endpoint = settings.oss.public_endpoint
    scheme = reach_scheme(settings, endpoint)
    if endpoint.is_ip:
        return [f"{scheme}://{endpoint.host}"]
    return [f"{scheme}://{endpoint.host}", f"{scheme}://*.{endpoint.host}"]


def content_security_policy(settings: Settings) -> str:
    connect = ["'self'", *oss_sources(settings)]
    issuer = _origin(settings.auth.jwt_issuer) if settings.auth.mode == "jwt" else None
    if issuer:
        connect.append(issuer)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {' '.join(connect)}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page needs to offer the right sign-in; nothing secret (the page is public)."""
    auth = settings.auth
    oidc = None
    if auth.mode == "jwt" and _origin(auth.jwt_issuer) and auth.jwt_audience:
        # The portal is a public client whose id is the API's audience, so the ID token it receives is a
        # token the API accepts (iss = JWT_ISSUER, aud = JWT_AUDIENCE).
        oidc = {"issuer": auth.jwt_issuer, "client_id": auth.jwt_audience, "scope": "openid"}
    return {"auth_mode": auth.mode, "oidc": oidc, "api": {"sts": "/sts", "sign": "/sign", "download": "/download/"}}
