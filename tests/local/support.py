"""Shared pieces of the emulator tests: constants, the adjustable clock, the Env wrapper, config."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.cloud import CloudConfig, LocalCloud
from local.sts import Role, Session

ACCOUNT = "1234567890123456"
ROOT_AK = "LTAI5tLocalRootKey0001"
ROOT_SECRET = "local-root-secret-0001"  # test-only key of the emulator
BUCKET = "demo"
CNAME_HOST = "files.example.test"
REGION = "cn-hangzhou"

OBJECT_READ_WRITE_ROLE = Role(
    arn=f"acs:ram::{ACCOUNT}:role/emulator-test",
    policies=[{
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["oss:*"], "Resource": [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*"]},
            {"Effect": "Deny", "Action": ["oss:*"], "Resource": [f"acs:oss:*:*:{BUCKET}/forbidden/*"]},
        ],
    }],
    trust=[f"acs:ram::{ACCOUNT}:root"],
    max_session_duration=43200,
)


class Clock:
    """Real time plus an adjustable offset (seconds): the emulator's notion of now."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Env:
    cloud: LocalCloud
    clock: Clock
    data_dir: Path

    @property
    def endpoint(self) -> str:
        return "http://" + self.cloud.oss_endpoint

    @property
    def port(self) -> int:
        return int(self.cloud.oss_endpoint.rsplit(":", 1)[1])

    def session(self, policy: dict[str, Any] | None = None, duration: int = 3600, name: str = "tester") -> Session:
        """Issue STS credentials for the test role straight from the shared token store."""
        return self.cloud.token_store.issue(OBJECT_READ_WRITE_ROLE, name, duration, policy)


def make_config(data_dir: Path, clock: Clock, **overrides: Any) -> CloudConfig:
    settings: dict[str, Any] = {
        "data_dir": data_dir,
        "root_keys": {ROOT_AK: ROOT_SECRET},
        "buckets": [BUCKET, "other"],
        "roles": [OBJECT_READ_WRITE_ROLE],
        "cnames": {CNAME_HOST: BUCKET},
        "cors": {BUCKET: [{"AllowedOrigin": ["https://app.example.test"], "AllowedMethod": ["GET", "PUT"],
                           "AllowedHeader": ["*"], "ExposeHeader": ["ETag", "x-oss-request-id"],
                           "MaxAgeSeconds": 600}]},
        "public_read": ["public"],
        "clock": clock,
    }
    settings.update(overrides)
    return CloudConfig(**settings)


def v2_client(env: Env, mode: str, policy: dict[str, Any] | None = None) -> Any:
    """An alibabacloud-oss-v2 client on the emulator: mode "root-v4", "sts-v1", ... (STS narrowed by ``policy``)."""
    import alibabacloud_oss_v2 as oss

    config = oss.config.load_default()
    if mode.startswith("root"):
        config.credentials_provider = oss.credentials.StaticCredentialsProvider(ROOT_AK, ROOT_SECRET)
    else:
        session = env.session(policy)
        config.credentials_provider = oss.credentials.StaticCredentialsProvider(
            session.access_key_id, session.access_key_secret, session.security_token)
    config.region, config.endpoint, config.use_path_style = REGION, env.endpoint, True
    config.signature_version = mode.rsplit("-", 1)[1]
    config.retry_max_attempts = 1
    return oss.Client(config)
