"""Per-scope signing sessions: policy, LRU bound, refresh before they run short, single flight, stale grace."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import Forbidden
from shared.scoped_signing import (
    STALE_GRACE_SECONDS,
    ScopedSessions,
    SigningScope,
    covering_scope,
    directory_scope,
    session_policy,
)
from shared.signing import Credentials

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


class CountingSts:
    """A fake AssumeRole: counts calls per scope, optionally slow (to make concurrent misses overlap)."""

    def __init__(self, lifetime: int = 43200, delay: float = 0.0) -> None:
        self.lifetime = lifetime
        self.delay = delay
        self.calls: list[SigningScope] = []
        self.lock = threading.Lock()
        self.fail = False
        self.now = NOW

    def __call__(self, scope: SigningScope) -> Credentials:
        with self.lock:
            self.calls.append(scope)
            number = len(self.calls)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("sts is down")
        return Credentials(f"STS.{number}", f"secret-{number}", f"token-{number}",
                           self.now + timedelta(seconds=self.lifetime))


def sessions(sts: CountingSts, **options: float) -> ScopedSessions:
    values = {"max_entries": 3, "refresh_before": 3600, "session_seconds": 43200, **options}
    return ScopedSessions(max_entries=int(values["max_entries"]), refresh_before=values["refresh_before"],
                          session_seconds=values["session_seconds"], clock=lambda: sts.now)


def test_the_session_policy_allows_get_in_the_scope_only_and_put_only_when_asked() -> None:
    read = json.loads(session_policy("demo-bucket", SigningScope.of(["users/alice/"])))
    assert read == {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:demo-bucket/users/alice/*"]},
        {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": ["acs:oss:*:*:demo-bucket"],
         "Condition": {"StringLike": {"oss:Prefix": ["users/alice/*"]}}}]}
    write = json.loads(session_policy("demo-bucket", SigningScope.of(["users/alice/"], write=True)))
    assert write["Statement"][0]["Action"][:2] == ["oss:GetObject", "oss:PutObject"]
    two = json.loads(session_policy("demo-bucket", SigningScope.of(["b/", "a/", "b/"])))
    assert [s["Resource"] for s in two["Statement"] if s["Action"] == ["oss:GetObject"]] == [
        ["acs:oss:*:*:demo-bucket/a/*"], ["acs:oss:*:*:demo-bucket/b/*"]]
    for bad in ("", "users/alice", "users/*/", "../", "a/../"):  # shared/policy.py refuses what could widen
        with pytest.raises(Forbidden):
            session_policy("demo-bucket", SigningScope.of([bad]))


@pytest.mark.parametrize(("key", "scope"), [
    ("users/alice/a.txt", "users/alice/"), ("users/alice/d/e/f", "users/alice/d/e/"), ("a.txt", None),
    ("users/al*ce/x", "users/"), ("users//x", "users/"), ("users/../bob/x", "users/"), ("/x", None),
    ("users/a\x01/x", "users/"),
])
def test_directory_scope_is_the_narrowest_policy_safe_prefix(key: str, scope: str | None) -> None:
    assert directory_scope(key) == scope


def test_covering_scope_of_configured_prefixes() -> None:
    assert covering_scope("incoming/") == "incoming/"
    assert covering_scope("logs/2024") == "logs/"
    assert covering_scope("logs") is None and covering_scope("") is None


def test_one_sts_call_per_scope_then_cached() -> None:
    sts = CountingSts()
    cache = sessions(sts)
    alice, bob = SigningScope.of(["users/alice/"]), SigningScope.of(["users/bob/"])
    first = cache.get(alice, sts)
    assert cache.get(alice, sts) is first
    assert cache.get(bob, sts) is not first
    assert cache.get(SigningScope.of(["users/alice/"], write=True), sts) is not first  # PUT: its own session
    assert len(sts.calls) == 3


def test_concurrent_misses_for_one_scope_make_one_sts_call() -> None:
    sts = CountingSts(delay=0.05)
    cache = sessions(sts, max_entries=100)
    scopes = [SigningScope.of([f"users/u{i % 4}/"]) for i in range(64)]
    results: list[Credentials] = []
    barrier = threading.Barrier(len(scopes))

    def worker(scope: SigningScope) -> None:
        barrier.wait()
        results.append(cache.get(scope, sts))

    threads = [threading.Thread(target=worker, args=(scope,)) for scope in scopes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 64
    assert sorted(scope.prefixes[0] for scope in sts.calls) == [f"users/u{i}/" for i in range(4)]
    assert len({id(credentials) for credentials in results}) == 4


def test_sessions_are_refreshed_before_they_run_short() -> None:
    sts = CountingSts()
    cache = sessions(sts)
    scope = SigningScope.of(["users/alice/"])
    first = cache.get(scope, sts)
    sts.now = NOW + timedelta(seconds=43200 - 3601)  # 3601 s left: still served
    assert cache.get(scope, sts) is first
    sts.now = NOW + timedelta(seconds=43200 - 3599)  # under SIGNER_REFRESH_SECONDS: a new session
    second = cache.get(scope, sts)
    assert second is not first and len(sts.calls) == 2


def test_a_short_session_is_not_refreshed_on_every_call() -> None:
    sts = CountingSts(lifetime=900)
    cache = sessions(sts, refresh_before=3600, session_seconds=900)
    scope = SigningScope.of(["users/alice/"])
    first = cache.get(scope, sts)
    sts.now = NOW + timedelta(seconds=400)  # 500 s left > half the session
    assert cache.get(scope, sts) is first and len(sts.calls) == 1


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    sts = CountingSts()
    cache = sessions(sts, max_entries=3)
    scopes = [SigningScope.of([f"users/u{i}/"]) for i in range(4)]
    for scope in scopes[:3]:
        cache.get(scope, sts)
    cache.get(scopes[0], sts)  # u0 is now the most recent
    cache.get(scopes[3], sts)  # evicts u1
    assert len(cache) == 3 and len(sts.calls) == 4
    cache.get(scopes[0], sts)
    assert len(sts.calls) == 4
    cache.get(scopes[1], sts)
    assert len(sts.calls) == 5


def test_a_failed_refresh_keeps_the_current_session_only_while_enough_of_it_remains() -> None:
    sts = CountingSts()
    cache = sessions(sts)
    scope = SigningScope.of(["users/alice/"])
    first = cache.get(scope, sts)
    sts.fail = True
    sts.now = NOW + timedelta(seconds=43200 - 3000)
    stale: list[float] = []
    assert cache.get(scope, sts, on_stale=stale.append) is first and stale == [3000.0]
    sts.now = NOW + timedelta(seconds=43200 - STALE_GRACE_SECONDS + 1)
    with pytest.raises(RuntimeError):
        cache.get(scope, sts)


# --- through the sign handler: one session per scope and write flag, validity reported against its life ----------


def test_the_sign_handler_signs_with_the_scopes_session_and_clamps_to_its_life(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.sign.handler import handler
    from shared import credentials
    from tests.sign.helpers import OTHER_API_KEY, body_of, context, event, install_env

    install_env(monkeypatch, SIGNER_ROLE_ARN="acs:ram::1234567890123456:role/oss-url-signer", SIGN_ALLOW_PUT="true")
    assumed: list[SigningScope] = []

    def fake_assume(_context: object, _settings: object, scope: SigningScope) -> Credentials:
        assumed.append(scope)
        return Credentials(f"STS.scoped{len(assumed)}", "s", "t", datetime.now(timezone.utc) + timedelta(seconds=5000))

    monkeypatch.setattr(credentials, "_assume_scoped", fake_assume)
    get = body_of(handler(event("GET", "/sign", query={"key": "exampledir/a.txt", "expires": "7200"}), context()))
    assert (get["clamped"], get["clamp_reason"]) == (True, "credentials") and 4990 <= get["expires_in"] <= 5000
    assert "STS.scoped1%2F" in get["url"]
    put = body_of(handler(event("GET", "/sign", query={"key": "exampledir/b.txt", "method": "PUT"}), context()))
    assert "STS.scoped2%2F" in put["url"]
    again = body_of(handler(event("GET", "/sign", query={"key": "exampledir/c.txt"}), context()))
    assert "STS.scoped1%2F" in again["url"]
    other = body_of(handler(event("GET", "/sign", query={"key": "otherdir/c.txt"}, api_key=OTHER_API_KEY), context()))
    assert "STS.scoped3%2F" in other["url"]
    assert assumed == [SigningScope(("exampledir/",)), SigningScope(("exampledir/",), write=True),
                       SigningScope(("otherdir/",))]
