"""TokenStore: durable across restarts, expired sessions still found, safe under concurrent issuance."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from local.sts import Role, Session, TokenStore

ROLE = Role(
    arn="acs:ram::1234567890123456:role/reader",
    policies=[{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]}],
    trust=["acs:ram::1234567890123456:root"],
)
POLICY = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/u/*"}],
}
T0 = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_session_survives_a_restart(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sts.db")
    issued = store.issue(ROLE, "alice", 900, POLICY, now=T0, source_identity="alice-1")
    store.close()

    reopened = TokenStore(tmp_path / "sts.db")
    found = reopened.by_access_key(issued.access_key_id)
    assert found == issued
    assert found is not None
    assert found.expiration == datetime(2026, 6, 1, 12, 15, 0, tzinfo=timezone.utc)  # whole seconds, UTC
    assert found.role_policies == tuple(ROLE.policies)
    assert found.session_policy == POLICY
    assert found.source_identity == "alice-1"
    reopened.close()


def test_expired_sessions_are_found_with_their_expiration(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sts.db")
    issued = store.issue(ROLE, "alice", 900, None, now=T0)
    found = store.by_access_key(issued.access_key_id)
    assert found is not None and found.session_policy is None
    assert found.is_expired(T0 + timedelta(seconds=900))
    assert not found.is_expired(T0 + timedelta(seconds=899))
    assert found.is_expired()  # T0 is in the past
    store.close()


def test_unknown_key(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sts.db")
    assert store.by_access_key("STS.nothere") is None
    assert store.by_access_key("") is None
    store.close()


def test_concurrent_issue_and_lookup(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sts.db")
    issued: list[Session] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            session = store.issue(ROLE, "alice", 900, POLICY)
            assert store.by_access_key(session.access_key_id) == session
            with lock:
                issued.append(session)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(issued) == 200
    assert len({s.access_key_id for s in issued}) == 200
    assert len({s.security_token for s in issued}) == 200

    # A second store (another process would do the same) sees every committed row.
    other = TokenStore(tmp_path / "sts.db")
    assert all(other.by_access_key(s.access_key_id) == s for s in issued)
    other.close()
    store.close()


def test_credentials_look_like_the_real_ones(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sts.db")
    session = store.issue(ROLE, "alice", 3600, POLICY, now=T0)
    assert session.access_key_id.startswith("STS.") and len(session.access_key_id) == 28
    assert session.access_key_secret.isalnum() and len(session.access_key_secret) >= 30
    assert session.security_token.startswith("CAIS") and len(session.security_token) > 200
    assert session.assumed_role_arn == f"{ROLE.arn}/alice"
    assert session.assumed_role_id == f"{ROLE.role_id}:alice"
    store.close()


def test_rows_are_plain_sqlite(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sts.db")
    session = store.issue(ROLE, "alice", 900, None, now=T0)
    store.close()
    with sqlite3.connect(tmp_path / "sts.db") as conn:
        (expiration,) = conn.execute(
            "SELECT expiration FROM sessions WHERE access_key_id = ?", (session.access_key_id,)
        ).fetchone()
    assert expiration == "2026-06-01T12:15:00Z"
