"""Caller authentication for the HTTP functions (token, sign, download): one implementation.

``authenticate(request, settings.auth)`` verifies the caller and returns an ``Identity`` whose ``scope`` is
the key prefix it may touch. Modes (AUTH_MODE):

- ``jwt``: ``Authorization: Bearer <JWT>`` verified with PyJWT. The header's ``alg`` must be in
  JWT_ALGORITHMS (``none`` never is) before anything else happens; HS256 tokens are checked only against
  JWT_HS256_SECRET, never against a public key (no key confusion). ``iss``, ``aud`` and ``exp`` are
  required, ``nbf``/``iat`` checked when present, with JWT_LEEWAY. Keys: JWT_PUBLIC_KEY (PEM), JWT_JWKS
  (inline, selected by ``kid``) or JWT_JWKS_URL (fetched and cached).
- ``apikey``: ``X-Api-Key: <key>`` or ``Authorization: ApiKey <key>``; AUTH_API_KEYS stores only SHA-256
  hashes, each compared in constant time.
- ``none``: everyone gets AUTH_ANONYMOUS_SCOPE (a warning is logged once per container).

Scopes are built from verified values only, and every identity value that reaches a scope must match
``[A-Za-z0-9._@-]{1,128}`` and not be ``.`` or ``..``: no ``*``, ``?``, ``/`` or path trick can reach a policy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared import keys
from shared import logging as log
from shared.config import AuthSettings
from shared.errors import ConfigError, Forbidden, InvalidParameter, ServiceUnavailable, Unauthorized
from shared.http import Request

REALM = "oss-url"
JWKS_TIMEOUT_SECONDS = 5
JWKS_CACHE_SECONDS = 300
# After a failed JWKS fetch, callers get a 503 at once for this long instead of a new fetch each (and a
# wait of up to JWKS_TIMEOUT_SECONDS): unauthenticated requests must not hammer a struggling provider.
JWKS_FAILURE_PAUSE_SECONDS = 5

# Used with fullmatch: a '$' after re.match would accept a trailing newline ("alice\n").
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_:.-]{0,63})\}")
_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")


def is_safe_segment(value: object) -> bool:
    """True for a value allowed inside a scope: 1-128 of ``A-Za-z0-9._@-``, not ``.`` or ``..``."""
    return isinstance(value, str) and bool(_SEGMENT_RE.fullmatch(value)) and value not in (".", "..")


@dataclass(frozen=True)
class Identity:
    subject: str
    scope: str  # key prefix ending with '/'
    name: str
    method: str  # jwt | apikey | none
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def narrow(self, sub_prefix: str | None) -> Identity:
        """The same identity restricted to ``scope + sub_prefix``; sub_prefix is relative to the scope.

        Empty segments are dropped (``a//b`` -> ``a/b/``); each segment obeys the identity character rules,
        so the narrowed scope is always inside the original one.
        """
        if sub_prefix is None:
            return self
        if not isinstance(sub_prefix, str):
            raise InvalidParameter("prefix must be a string")
        if sub_prefix.strip("/") == "":
            return self
        segments = [segment for segment in sub_prefix.split("/") if segment]
        if not all(is_safe_segment(segment) for segment in segments):
            raise InvalidParameter("prefix segments may contain only letters, digits, '.', '_', '@', '-' "
                                   "(1-128 characters, not '.' or '..')")
        scope = self.scope + "/".join(segments) + "/"
        try:
            keys.validate_scope_prefix(scope)
        except keys.SigningError as exc:
            raise InvalidParameter(f"prefix is invalid: {exc.message}") from None
        return replace(self, scope=scope)

    def allows_key(self, key: str) -> bool:
        """True if ``key`` is a valid object key strictly inside this identity's scope."""
        return keys.is_key_in_scope(key, self.scope)


def authenticate(request: Request, settings: AuthSettings) -> Identity:
    """Verify the caller (401 if not), then derive its scope (403 if its identity is unusable)."""
    if settings.mode == "jwt":
        return _jwt_identity(request, settings)
    if settings.mode == "apikey":
        return _apikey_identity(request, settings)
    if settings.mode == "none":
        return _anonymous_identity(settings)
    raise ConfigError("AUTH_MODE must be jwt, apikey or none")


# --- scope -----------------------------------------------------------------------------------------------


def fill_scope(template: str, claims: Mapping[str, Any]) -> str:
    """Fill ``{claim}`` placeholders from verified claims; refuse (403) missing or unsafe values."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        value = claims.get(name)
        if value is None:
            raise Forbidden(f"the token has no {name!r} claim, which the scope needs")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise Forbidden(f"the token's {name!r} claim is not a string")
        value = str(value)
        if not is_safe_segment(value):
            raise Forbidden(f"the token's {name!r} claim contains characters not allowed in a scope")
        return value

    scope = _PLACEHOLDER_RE.sub(value_of, template)
    if "{" in scope or "}" in scope:
        raise ConfigError("AUTH_SCOPE_TEMPLATE has a malformed placeholder")
    return _checked_scope(scope, "AUTH_SCOPE_TEMPLATE")


def _checked_scope(scope: str, source: str) -> str:
    if not scope.endswith("/") or any(ch in scope for ch in "*?\"") or scope.startswith("/"):
        raise ConfigError(f"{source} must give a key prefix ending with '/', without wildcards")
    try:
        keys.validate_scope_prefix(scope)
    except keys.SigningError as exc:
        raise ConfigError(f"{source} gives an invalid scope: {exc.message}") from None
    return scope


# --- none -------------------------------------------------------------------------------------------------

_anonymous_warned = False


def _anonymous_identity(settings: AuthSettings) -> Identity:
    global _anonymous_warned
    if not _anonymous_warned:
        _anonymous_warned = True
        log.get_logger().warning("auth.anonymous_mode",
                                 scope=settings.anonymous_scope)
    scope = _checked_scope(settings.anonymous_scope, "AUTH_ANONYMOUS_SCOPE")
    return Identity(subject="anonymous", scope=scope, name="anonymous", method="none")


# --- API keys ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ApiKey:
    digest: bytes
    name: str
    scope: str


_apikey_tables: dict[int, tuple[Mapping[str, Any], tuple[_ApiKey, ...]]] = {}
_tables_lock = threading.Lock()


def _apikey_table(settings: AuthSettings) -> tuple[_ApiKey, ...]:
    cached = _apikey_tables.get(id(settings.api_keys))
    if cached is not None and cached[0] is settings.api_keys:
        return cached[1]
    table = []
    for digest, entry in settings.api_keys.items():
        if not isinstance(digest, str) or not _SHA256_HEX_RE.fullmatch(digest.lower()):
            raise ConfigError("AUTH_API_KEYS keys must be SHA-256 hex digests of the API keys")
        if not isinstance(entry, dict) or not is_safe_segment(entry.get("name")):
            raise ConfigError("AUTH_API_KEYS entries need a name of letters, digits, '.', '_', '@', '-'")
        scope = _checked_scope(str(entry.get("scope", "")), "AUTH_API_KEYS scope")
        table.append(_ApiKey(bytes.fromhex(digest), entry["name"], scope))
    with _tables_lock:
        _apikey_tables[id(settings.api_keys)] = (settings.api_keys, tuple(table))
    return tuple(table)


def hash_api_key(api_key: str) -> str:
    """The SHA-256 hex digest stored in AUTH_API_KEYS for ``api_key``."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _presented_api_key(request: Request) -> str | None:
    value = request.header("x-api-key")
    if value and value.strip():
        return value.strip()
    scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
    if scheme.lower() == "apikey" and token.strip():
        return token.strip()
    return None


def _apikey_identity(request: Request, settings: AuthSettings) -> Identity:
    challenge = {"WWW-Authenticate": f'ApiKey realm="{REALM}"'}
    table = _apikey_table(settings)
    presented = _presented_api_key(request)
    if presented is None:
        raise Unauthorized("an API key is required (X-Api-Key header)", headers=challenge)
    digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    match: _ApiKey | None = None
    for entry in table:  # compare against every entry: timing says nothing about which one matched
        if hmac.compare_digest(digest, entry.digest):
            match = entry
    if match is None:
        raise Unauthorized("the API key is not valid", headers=challenge)
    return Identity(subject=match.name, scope=match.scope, name=match.name, method="apikey")


# --- JWT --------------------------------------------------------------------------------------------------


def _jwt_challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return {"WWW-Authenticate": value}


def _invalid_token(message: str) -> Unauthorized:
    return Unauthorized(message, headers=_jwt_challenge("invalid_token", message))


_jwks_clients: dict[str, Any] = {}
_jwks_lock = threading.Lock()
_jwks_failed_at: dict[str, float] = {}  # url -> time.monotonic() of the last failed fetch


def _jwks_client(url: str) -> Any:
    import jwt

    with _jwks_lock:
        client = _jwks_clients.get(url)
        if client is None:
            client = jwt.PyJWKClient(url, cache_keys=True, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS,
                                     timeout=JWKS_TIMEOUT_SECONDS)
            _jwks_clients[url] = client
        return client


_inline_jwks: dict[str, Any] = {}


def _inline_jwk_set(document: str) -> Any:
    import jwt

    key_set = _inline_jwks.get(document)
    if key_set is None:
        try:
            key_set = jwt.PyJWKSet.from_dict(json.loads(document))
        except (ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as exc:
            raise ConfigError(f"JWT_JWKS is not a usable JWKS document: {type(exc).__name__}") from None
        _inline_jwks[document] = key_set
    return key_set


def _verification_key(token: str, header: Mapping[str, Any], settings: AuthSettings) -> Any:
    """The key ``header`` asks for: the HS256 secret, else the first source that knows it (inline JWKS, the
    JWKS URL, JWT_PUBLIC_KEY, in that order)."""
    if header["alg"] == "HS256":
        if not settings.jwt_hs256_secret:
            raise _invalid_token("HS256 tokens are not accepted")
        return settings.jwt_hs256_secret
    key = None
    if settings.jwt_jwks:
        key = _inline_jwks_key(settings.jwt_jwks, header.get("kid"))
    if key is None and settings.jwt_jwks_url:
        key = _remote_jwks_key(token, settings.jwt_jwks_url)
    if key is None and settings.jwt_public_key:
        key = _public_key(settings.jwt_public_key)
    if key is None:
        raise _invalid_token("the token's signing key is unknown")
    return key


def _inline_jwks_key(document: str, kid: str | None) -> Any:
    """The JWT_JWKS key with id ``kid`` (the only key when there is no ``kid``), or None: not there."""
    key_set = _inline_jwk_set(document)
    if kid is None and len(key_set.keys) > 1:
        raise _invalid_token("the token has no 'kid' header to select its key")
    candidates = [k for k in key_set.keys if kid is None or k.key_id == kid]
    return candidates[0].key if candidates else None


def _remote_jwks_key(token: str, url: str) -> Any:
    """The key JWT_JWKS_URL publishes for ``token``, or None: not there. An unreachable provider is a 503,
    and is not asked again for JWKS_FAILURE_PAUSE_SECONDS."""
    import jwt

    unavailable = ServiceUnavailable("the identity provider's keys are unavailable; retry later",
                                     headers={"Retry-After": str(JWKS_FAILURE_PAUSE_SECONDS)})
    failed_at = _jwks_failed_at.get(url)
    if failed_at is not None and time.monotonic() - failed_at < JWKS_FAILURE_PAUSE_SECONDS:
        raise unavailable
    try:
        return _jwks_client(url).get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError:
        _jwks_failed_at[url] = time.monotonic()
        log.get_logger().warning("auth.jwks_fetch_failed", url=url)
        raise unavailable from None
    except (jwt.PyJWKClientError, jwt.PyJWKError, jwt.DecodeError):
        return None


_public_keys: dict[str, Any] = {}


def _public_key(pem: str) -> Any:
    """JWT_PUBLIC_KEY parsed once (environment variables often carry the PEM with literal '\\n')."""
    key = _public_keys.get(pem)
    if key is None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        text = pem.replace("\\n", "\n").strip()
        try:
            key = load_pem_public_key(text.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError):
            raise ConfigError("JWT_PUBLIC_KEY is not a PEM public key") from None
        _public_keys[pem] = key
    return key


def _jwt_identity(request: Request, settings: AuthSettings) -> Identity:
    token = request.bearer_token()
    if token is None:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <JWT>)", headers=_jwt_challenge())
    header = _accepted_header(token, settings)
    key = _verification_key(token, header, settings)
    claims = _verified_claims(token, key, header["alg"], settings)
    subject = claims.get("sub")
    if subject is None:
        raise Forbidden("the token has no 'sub' claim")
    if not is_safe_segment(subject):
        raise Forbidden("the token's subject contains characters not allowed in a scope")
    scope = fill_scope(settings.scope_template, claims)
    return Identity(subject=subject, scope=scope, name=subject, method="jwt", claims=claims)


def _accepted_header(token: str, settings: AuthSettings) -> Mapping[str, Any]:
    """The token's unverified header, refused unless its algorithm is one JWT_ALGORITHMS accepts."""
    import jwt

    if not token.isascii():  # base64url and dots only; a lone surrogate would make PyJWT raise UnicodeEncodeError
        raise _invalid_token("the token is malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid_token("the token is malformed") from None
    algorithm = header.get("alg")
    # Checked before any key is chosen: refuses 'none' and algorithm-confusion attempts outright.
    if not isinstance(algorithm, str) or algorithm.lower() == "none" or algorithm not in settings.jwt_algorithms:
        raise _invalid_token("the token's algorithm is not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _invalid_token("the token is malformed")
    return header


def _verified_claims(token: str, key: Any, algorithm: str, settings: AuthSettings) -> dict[str, Any]:
    """The claims of a token whose signature, expiry, audience and issuer hold; 401 saying which does not."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway,
            options={"require": ["exp", "iss", "aud"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise _invalid_token("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise _invalid_token("the token is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise _invalid_token("the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise _invalid_token("the token is from an unexpected issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid_token(f"the token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise _invalid_token("the token's signature is not valid") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise _invalid_token("the token is not valid") from None
    return claims


def reset_caches() -> None:
    """Forget JWKS clients, parsed key sets, API-key tables and the anonymous warning (tests)."""
    global _anonymous_warned
    with _jwks_lock:
        _jwks_clients.clear()
    _jwks_failed_at.clear()
    _inline_jwks.clear()
    _public_keys.clear()
    with _tables_lock:
        _apikey_tables.clear()
    _anonymous_warned = False
