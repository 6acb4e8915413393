"""Signing sessions narrowed to a caller's scope, so that OSS itself refuses a URL outside it.

A URL is only as narrow as the credentials that sign it. Signed with the signer role's own session, a URL
for any key of the bucket would work, and the caller's scope would rest on one check in our code. Here the
signer role is assumed with a session policy (built by shared/policy.py) that allows ``oss:GetObject`` on
``bucket/<scope>*`` only (and listing under the scope), plus the write actions when the URL is a PUT: the
effective permission of a session is the intersection of the role's policy and the session policy
(sts-and-policy.md), so the emulator, like OSS, answers 403 AccessDenied to anything else signed with it.

``ScopedSessions`` keeps one session per scope: an LRU bounded by SIGNER_SCOPE_CACHE_SIZE, refreshed when
less than SIGNER_REFRESH_SECONDS remain (at most half the session, so a short session is not refreshed on
every call), single-flight per scope (concurrent misses for one scope make one STS call and share it),
and a session that fails to refresh is kept while ``STALE_GRACE_SECONDS`` of it remain. Validity clamping
(shared/validity.py) then reports every URL against the remaining life of the session that signed it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared import policy
from shared.signing import Credentials

# A session that failed to refresh is still used while at least this much of it remains.
STALE_GRACE_SECONDS = 300


@dataclass(frozen=True)
class SigningScope:
    """What a session may sign: objects under ``prefixes`` (each ends with '/'), and PUT when ``write``."""

    prefixes: tuple[str, ...]
    write: bool = False

    @classmethod
    def of(cls, prefixes: Iterable[str], *, write: bool = False) -> SigningScope:
        return cls(tuple(sorted(set(prefixes))), write)

    def label(self) -> str:
        """A short human name for the audit trail (RoleSessionName)."""
        text = ",".join(self.prefixes)
        return f"{text}+w" if self.write else text


def session_policy(bucket: str, scope: SigningScope) -> str:
    """The session policy text: shared/policy.py's statements for each prefix, in one document.

    Listing inside the scope (an ``oss:Prefix`` condition) lets shared/symlinks.py settle a batch's keys with
    one request per directory; we never sign a listing URL, so callers cannot use it."""
    actions = ("read", "list", "write") if scope.write else ("read", "list")
    statements: list[dict[str, Any]] = []
    for prefix in scope.prefixes:
        statements.extend(policy.build_policy(bucket, prefix, actions)["Statement"])
    return policy.serialize({"Version": "1", "Statement": statements})


def directory_scope(key: str) -> str | None:
    """The narrowest usable scope holding ``key``: its directory, cut before any segment a policy refuses.

    For links that do not carry the issuing caller's scope (proxy links); None when no prefix is usable.
    """
    segments = key.split("/")[:-1]
    kept: list[str] = []
    for segment in segments:
        if segment in ("", ".", "..") or not _policy_safe(segment):
            break
        kept.append(segment)
    return "/".join(kept) + "/" if kept else None


def covering_scope(prefix: str) -> str | None:
    """The '/'-ended prefix a configured key prefix lies in (``logs/2024`` -> ``logs/``); None for the bucket."""
    if prefix.endswith("/"):
        return directory_scope(prefix + "x") if prefix else None
    return directory_scope(prefix)


def prefixes_scope(prefixes: Iterable[str]) -> SigningScope | None:
    """The read scope for configured key prefixes (on_upload, export); None when one of them is the bucket."""
    covering = [covering_scope(prefix) for prefix in prefixes]
    if not covering or any(scope is None for scope in covering):
        return None
    return SigningScope.of(scope for scope in covering if scope is not None)


def _policy_safe(segment: str) -> bool:
    return not any(ch in segment for ch in '*?"\\') and all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in segment)


class _Slot:
    __slots__ = ("credentials", "lock")

    def __init__(self) -> None:
        self.credentials: Credentials | None = None
        self.lock = threading.Lock()


Assume = Callable[[SigningScope], Credentials]


class ScopedSessions:
    """One session per scope: bounded LRU, refreshed early, single-flight per scope."""

    def __init__(self, *, max_entries: int, refresh_before: float, session_seconds: float,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.max_entries = max_entries
        # Refreshing when more than half a session remains would refresh a short session on every call.
        self.refresh_before = min(refresh_before, session_seconds / 2)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._slots: OrderedDict[SigningScope, _Slot] = OrderedDict()
        self._lock = threading.Lock()

    def _remaining(self, credentials: Credentials | None) -> float:
        if credentials is None or credentials.expiration is None:
            return -1.0
        return (credentials.expiration - self._clock()).total_seconds()

    def _slot(self, scope: SigningScope) -> _Slot:
        with self._lock:
            slot = self._slots.get(scope)
            if slot is None:
                slot = self._slots[scope] = _Slot()
                while len(self._slots) > self.max_entries:
                    self._slots.popitem(last=False)
            else:
                self._slots.move_to_end(scope)
            return slot

    def get(self, scope: SigningScope, assume: Assume, on_stale: Callable[[float], None] | None = None) -> Credentials:
        """The scope's session, assuming one (``assume(scope)``) when there is none or it runs short."""
        slot = self._slot(scope)
        current = slot.credentials
        if current is not None and self._remaining(current) > self.refresh_before:
            return current
        with slot.lock:  # one STS call per scope; the others wait for it and share its result
            current = slot.credentials
            if current is not None and self._remaining(current) > self.refresh_before:
                return current
            try:
                fresh = assume(scope)
            except Exception:
                remaining = self._remaining(current)
                if current is not None and remaining > STALE_GRACE_SECONDS:
                    if on_stale is not None:
                        on_stale(remaining)
                    return current
                raise
            slot.credentials = fresh
            return fresh

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
