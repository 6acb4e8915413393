"""Effective validity of a pre-signed URL.

effective = min(requested, credentials' remaining lifetime, version ceiling, configured maximum)

V4 URLs carry `x-oss-expires`, a duration the service refuses above 604800 s (7 days); V1 URLs
carry an absolute `Expires` with no documented ceiling. A URL signed with STS credentials dies
with the token, so its expiry is clamped to the token's. A result below the configured floor is
an error rather than a URL that dies at once (clock skew alone can eat a few seconds).

Time is passed in (`now`), so results are reproducible.

Also the codebase's UTC time helpers: `to_utc`, `format_utc` (`2023-11-14T22:13:20Z`) and `parse_utc`
(ISO 8601 / RFC 3339 in, aware UTC out), used by the handlers, events, STS, storage and export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, TypeGuard

from shared.keys import CredentialsExpiring, ExpiresTooShort, InvalidExpires, InvalidOption

V4_MAX_EXPIRES = 604800
DEFAULT_FLOOR_SECONDS = 60
# V1 `Expires` is an epoch second; keep far from 32-bit overflow and from nonsense requests.
MAX_REQUESTED_SECONDS = 10 * 365 * 86400

ClampReason = Literal["credentials", "v4_ceiling", "configured_max"]
Version = Literal["v4", "v1"]


@dataclass(frozen=True)
class ValidityPolicy:
    """Configured bounds: `floor_seconds` minimum, `max_seconds` maximum (None = no maximum)."""

    floor_seconds: int = DEFAULT_FLOOR_SECONDS
    max_seconds: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.floor_seconds) or not 1 <= self.floor_seconds <= V4_MAX_EXPIRES:
            raise InvalidOption(f"validity floor must be an integer from 1 to {V4_MAX_EXPIRES} seconds")
        if self.max_seconds is not None and (
            not _is_int(self.max_seconds) or self.max_seconds < self.floor_seconds
        ):
            raise InvalidOption("validity maximum must be an integer not below the floor")


@dataclass(frozen=True)
class Validity:
    """The validity a URL is signed with. `signed_at` is `now` truncated to the second."""

    signed_at: datetime
    expires_at: datetime
    expires_in: int
    requested: int
    clamped: bool
    clamp_reason: ClampReason | None

    def to_dict(self) -> dict[str, object]:
        """The one rendering of a validity: the fields of the /sign results (README, "API")."""
        return {
            "expires_at": format_utc(self.expires_at),
            "expires_in": self.expires_in,
            "clamped": self.clamped,
            "clamp_reason": self.clamp_reason,
        }


def effective_validity(
    requested: object,
    *,
    version: Version,
    now: datetime,
    credentials_expire_at: datetime | None = None,
    policy: ValidityPolicy | None = None,
) -> Validity:
    """Clamp `requested` seconds; raise InvalidExpires, ExpiresTooShort or CredentialsExpiring."""
    policy = policy or _DEFAULT_POLICY
    if not _is_int(requested) or requested < 1:
        raise InvalidExpires("expires must be a positive integer number of seconds")
    if requested > MAX_REQUESTED_SECONDS:
        raise InvalidExpires(f"expires must be at most {MAX_REQUESTED_SECONDS} seconds")
    if requested < policy.floor_seconds:
        raise ExpiresTooShort(f"expires must be at least {policy.floor_seconds} seconds")

    signed_at = truncate_to_second(now)
    bounds = _bounds(version, signed_at, credentials_expire_at, policy)
    effective: int = requested
    reason: ClampReason | None = None
    for bound, bound_reason in bounds:
        if bound < effective:
            effective, reason = bound, bound_reason

    if effective < policy.floor_seconds:
        # Only the credentials bound can fall below the floor (the others are >= floor).
        raise CredentialsExpiring(
            f"signing credentials expire in {max(effective, 0)} s, below the {policy.floor_seconds} s minimum"
        )
    return Validity(
        signed_at=signed_at,
        expires_at=signed_at + timedelta(seconds=effective),
        expires_in=effective,
        requested=requested,
        clamped=reason is not None,
        clamp_reason=reason,
    )


def _bounds(version: Version, signed_at: datetime, credentials_expire_at: datetime | None,
            policy: ValidityPolicy) -> list[tuple[int, ClampReason]]:
    """The upper bounds on a URL's lifetime, in seconds, each with its reason."""
    # Ordered: on a tie the first bound is reported, the most useful one to a caller.
    bounds: list[tuple[int, ClampReason]] = []
    if credentials_expire_at is not None:
        remaining = int((to_utc(credentials_expire_at) - signed_at).total_seconds())
        bounds.append((remaining, "credentials"))
    if version == "v4":
        bounds.append((V4_MAX_EXPIRES, "v4_ceiling"))
    elif version != "v1":
        raise InvalidOption("signature version must be 'v4' or 'v1'")
    if policy.max_seconds is not None:
        bounds.append((policy.max_seconds, "configured_max"))
    return bounds


def to_utc(moment: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    if moment.tzinfo is timezone.utc:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def truncate_to_second(moment: datetime) -> datetime:
    return to_utc(moment).replace(microsecond=0)


def format_utc(moment: datetime) -> str:
    """`2023-11-14T22:13:20Z`."""
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: object) -> datetime:
    """ISO 8601 / RFC 3339 (``2022-08-13T06:45:43.000Z``) -> aware UTC datetime; ValueError otherwise.

    A naive time is taken to be UTC. ``Z`` is rewritten because Python 3.10's ``fromisoformat`` refuses it.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected an ISO 8601 time")
    try:
        return to_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00")))
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before datetime.min once in UTC
        raise ValueError("the time is outside the range of representable times") from None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_DEFAULT_POLICY = ValidityPolicy()
