"""The log sweep over the whole security suite (issue 10): every line any function instance writes while these
tests run (stderr of every stack's instances, JSON or not, third-party libraries included) is kept, and at the
end searched for every AccessKey secret and security token the emulators issued (vended credentials, signer
and narrowed sessions), every stack's configured secrets, and any unmasked signature, token or JWT."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.sweep import SecretSweep

# Secret-shaped values that mask_secrets would have replaced by "***": seen unmasked, they leaked.
UNMASKED = re.compile(
    r"(?i)(?:[?&;\s\"']|^)(?:x-oss-signature|signature|x-oss-security-token|security-token|sig)=(?!\*\*\*)"
    r"[^&\s\"'\\]{8,}"
    r"|\"(?:AccessKeySecret|SecurityToken|access_key_secret|security_token)\"\s*:\s*\"(?!\*\*\*)[^\"]{8,}\""
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@pytest.fixture(scope="package", autouse=True)
def security_log_sweep() -> Iterator[None]:
    from local import gateway, sts, up

    patch = pytest.MonkeyPatch()
    lines: list[str] = []
    issued = SecretSweep()
    counts = {"sessions": 0}
    original_log = gateway.Gateway._log
    original_issue = sts.TokenStore.issue
    original_load = up.Secrets.load.__func__  # type: ignore[attr-defined]

    def log(self: Any, function: str, line: str) -> None:
        lines.append(line)
        original_log(self, function, line)

    def issue(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = original_issue(self, *args, **kwargs)
        counts["sessions"] += 1
        issued.add(session.access_key_secret, session.security_token)
        return session

    def load(cls: Any, data_dir: Any) -> Any:
        secrets = original_load(cls, data_dir)
        issued.add(secrets.root_access_key_secret, secrets.api_key, secrets.jwt_secret, secrets.link_secret,
                   secrets.webhook_secret)
        return secrets

    patch.setattr(gateway.Gateway, "_log", log)
    patch.setattr(sts.TokenStore, "issue", issue)
    patch.setattr(up.Secrets, "load", classmethod(load))
    yield
    patch.undo()
    hits = issued.found_in(lines) + [f"unmasked: {line[:300]}" for line in lines if UNMASKED.search(line)][:10]
    print(f"\nsecurity-suite log sweep: {len(lines)} instance log lines, {counts['sessions']} STS sessions issued, "
          f"{len(issued.secrets)} secrets searched, {len(hits)} found")
    assert not hits, hits
