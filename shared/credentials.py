"""Credentials the functions act with: the function role's own, or a dedicated signer role.

``function_credentials(context)`` reads the function role's temporary keys from ``context.credentials``
(python3.10) or the ``ALIBABA_CLOUD_*`` environment variables (python3.12). Their expiration:

1. ``context.credentials.expiration`` when the runtime provides it (the local gateway does),
2. else ``ALIBABA_CLOUD_CREDENTIALS_EXPIRATION`` (ISO 8601 UTC) when set,
3. else now + ``assumed_lifetime``: FUNCTION_CREDENTIALS_LIFETIME (default 3600 s) through
   ``function_credentials_for(context, settings)``. FC issues these keys for 36 h and rotates
   them, but does not say when they were issued; assuming a short remaining life means a URL signed with
   them is never promised longer than it can live. Use SIGNER_ROLE_ARN for longer URLs.

``signing_credentials(context, settings, scope)`` is what the sign, download, on_upload and export
functions use: with SIGNER_ROLE_ARN set, a session of the signer role narrowed to ``scope`` by a session
policy (shared/scoped_signing.py: one cached session per scope), or the role's own session when no scope
is given (assumed through shared/sts.py, cached, refreshed single-flight when less than
SIGNER_REFRESH_SECONDS remain); without it, the function credentials.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import logging as log
from shared import policy
from shared.config import Settings
from shared.errors import ConfigError
from shared.scoped_signing import ScopedSessions, SigningScope, session_policy
from shared.signing import Credentials
from shared.validity import parse_utc

__all__ = ["Credentials", "SignerCredentials", "SigningScope", "function_credentials", "function_credentials_for",
           "reset", "signing_credentials"]

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable name, not a secret
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105
ENV_EXPIRATION = "ALIBABA_CLOUD_CREDENTIALS_EXPIRATION"
DEFAULT_ASSUMED_LIFETIME = 3600
# A stale signer credential is still used if refreshing fails and at least this much of it remains.
STALE_GRACE_SECONDS = 300


def _expiration(value: Any) -> datetime | None:
    """datetime, ISO 8601 string or epoch seconds -> aware UTC datetime; None if absent or unusable."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, timezone.utc)
        elif isinstance(value, str):
            moment = parse_utc(value)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def function_credentials(context: Any, *, assumed_lifetime: int = DEFAULT_ASSUMED_LIFETIME,
                         environ: Mapping[str, str] | None = None,
                         now: datetime | None = None) -> Credentials:
    """The function role's credentials for this invocation (ConfigError if the function has no role)."""
    env = os.environ if environ is None else environ
    source = getattr(context, "credentials", None)
    access_key_id = getattr(source, "access_key_id", None) or ""
    access_key_secret = getattr(source, "access_key_secret", None) or ""
    security_token = getattr(source, "security_token", None) or None
    expiration = _expiration(getattr(source, "expiration", None))
    if not (access_key_id and access_key_secret):
        access_key_id = env.get(ENV_ACCESS_KEY_ID, "")
        access_key_secret = env.get(ENV_ACCESS_KEY_SECRET, "")
        security_token = env.get(ENV_SECURITY_TOKEN) or None
        expiration = None
    if not (access_key_id and access_key_secret):
        raise ConfigError("the function has no role credentials (set a role on the function)")
    log.register_secrets((access_key_secret, security_token))
    if expiration is None:
        expiration = _expiration(env.get(ENV_EXPIRATION))
    if expiration is None:
        expiration = (now or datetime.now(timezone.utc)) + timedelta(seconds=assumed_lifetime)
    return Credentials(access_key_id=access_key_id, access_key_secret=access_key_secret,
                       security_token=security_token, expiration=expiration)


def function_credentials_for(context: Any, settings: Settings) -> Credentials:
    """``function_credentials`` assuming FUNCTION_CREDENTIALS_LIFETIME when the platform gives no expiration."""
    return function_credentials(context, assumed_lifetime=settings.signer.function_credentials_lifetime)


class SignerCredentials:
    """The signer role's credentials: assumed once, reused, refreshed single-flight before they run out."""

    def __init__(self, role_arn: str) -> None:
        self.role_arn = role_arn
        self._current: Credentials | None = None
        self._lock = threading.Lock()

    def _remaining(self, now: datetime) -> float:
        current = self._current
        if current is None or current.expiration is None:
            return -1.0
        return (current.expiration - now).total_seconds()

    def get(self, context: Any, settings: Settings, now: datetime | None = None) -> Credentials:
        refresh_before = settings.signer.refresh_before
        current = self._current
        if current is not None and self._remaining(now or datetime.now(timezone.utc)) > refresh_before:
            return current
        with self._lock:  # one refresh at a time; the others wait and reuse its result
            now = now or datetime.now(timezone.utc)
            if self._current is not None and self._remaining(now) > refresh_before:
                return self._current
            from shared import sts

            caller = function_credentials_for(context, settings)
            try:
                assumed = sts.client_for(settings, caller).assume_role(
                    self.role_arn, f"signer-{settings.function}".replace("_", "-"),
                    settings.signer.session_seconds, None)
            except Exception:
                if self._current is not None and self._remaining(now) > STALE_GRACE_SECONDS:
                    log.get_logger().warning("signer.refresh_failed",
                                             remaining_seconds=int(self._remaining(now)))
                    return self._current
                raise
            self._current = assumed.credentials
            log.register_secrets((assumed.credentials.access_key_secret, assumed.credentials.security_token))
            log.get_logger().info("signer.refreshed", role_arn=self.role_arn,
                                  expiration=assumed.credentials.expiration.isoformat()
                                  if assumed.credentials.expiration else None)
            return self._current


_signers: dict[str, SignerCredentials] = {}
_scoped: dict[tuple[str, str], ScopedSessions] = {}
_signers_lock = threading.Lock()


def signing_credentials(context: Any, settings: Settings, scope: SigningScope | None = None) -> Credentials:
    """Credentials to sign URLs and OSS requests with: the signer role's session narrowed to ``scope`` (its
    own session when ``scope`` is None or empty) if a signer role is configured, else the function's."""
    role_arn = settings.signer.role_arn
    if not role_arn:
        return function_credentials_for(context, settings)
    if scope is not None and scope.prefixes:
        return _scoped_sessions(settings).get(
            scope, lambda wanted: _assume_scoped(context, settings, wanted),
            on_stale=lambda remaining: log.get_logger().warning(
                "signer.scoped_refresh_failed", remaining_seconds=int(remaining)))
    with _signers_lock:
        signer = _signers.get(role_arn)
        if signer is None:
            signer = _signers[role_arn] = SignerCredentials(role_arn)
    return signer.get(context, settings)


def _scoped_sessions(settings: Settings) -> ScopedSessions:
    key = (settings.signer.role_arn, settings.oss.bucket)
    with _signers_lock:
        sessions = _scoped.get(key)
        if sessions is None:
            signer = settings.signer
            sessions = _scoped[key] = ScopedSessions(max_entries=signer.scope_cache_size,
                                                     refresh_before=signer.refresh_before,
                                                     session_seconds=signer.session_seconds)
        return sessions


def _assume_scoped(context: Any, settings: Settings, scope: SigningScope) -> Credentials:
    from shared import sts

    caller = function_credentials_for(context, settings)
    name = policy.session_name(f"signer-{settings.function}".replace("_", "-"), scope.label())
    assumed = sts.client_for(settings, caller).assume_role(
        settings.signer.role_arn, name, settings.signer.session_seconds,
        session_policy(settings.oss.bucket, scope))
    log.register_secrets((assumed.credentials.access_key_secret, assumed.credentials.security_token))
    log.get_logger().info("signer.scoped_session", role_arn=settings.signer.role_arn, scope=scope.label(),
                          expiration=assumed.credentials.expiration.isoformat()
                          if assumed.credentials.expiration else None)
    return assumed.credentials


def reset() -> None:
    """Forget cached signer credentials (tests)."""
    with _signers_lock:
        _signers.clear()
        _scoped.clear()
