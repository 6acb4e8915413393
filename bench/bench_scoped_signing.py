"""What signing with scope-narrowed sessions costs (shared/scoped_signing.py, shared/symlinks.py).

1. STS calls per scope per hour: the per-scope session cache under a steady load (one /sign a minute per
   scope for 48 simulated hours, SIGNER_SESSION_SECONDS and SIGNER_REFRESH_SECONDS at their defaults),
   counted by a fake AssumeRole; and one STS call per scope however many concurrent misses (64 threads).
2. /sign in process (the real handler, a real FC event, API-key auth), one key, against the local
   emulator's STS: today's function credentials vs a narrowed signer session served from the cache.
3. The symlink check: the same call with URL_SYMLINK_CHECK (one HEAD to the emulator per key), and a
   100-key batch with and without it (HEADs run 8 at a time).
4. URL length: function-role session vs narrowed session, both issued by the emulator's STS. (The
   emulator's tokens have a fixed size; a real STS token also carries the session policy, so the real
   difference is larger: a few hundred characters for a one-statement policy is what to expect.)

    .venv/bin/python bench/bench_scoped_signing.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds

ROOT_AK, ROOT_SECRET = "LTAI5tBenchScopedRoot01", "bench-scoped-root-secret-0123456789"  # emulator-only
API_KEY = "bench-scoped-api-key-0123456789ab"
BUCKET, REGION, ACCOUNT = "demo-bucket", "cn-hangzhou", "1234567890123456"
SIGNER_ARN = f"acs:ram::{ACCOUNT}:role/oss-url-signer"
FUNCTION_ARN = f"acs:ram::{ACCOUNT}:role/oss-url-sign-fn"



def sts_calls_per_scope_per_hour() -> tuple[float, int]:
    from shared.scoped_signing import ScopedSessions, SigningScope
    from shared.signing import Credentials

    clock = [datetime(2026, 12, 1, tzinfo=timezone.utc)]
    calls = [0]

    def assume(_scope: SigningScope) -> Credentials:
        calls[0] += 1
        return Credentials("STS.x", "s", "t", clock[0] + timedelta(seconds=43200))

    cache = ScopedSessions(max_entries=1000, refresh_before=3600, session_seconds=43200, clock=lambda: clock[0])
    scope = SigningScope.of(["users/alice/"])
    hours = 48
    for _minute in range(hours * 60):
        cache.get(scope, assume)
        clock[0] += timedelta(minutes=1)
    steady = calls[0] / hours

    slow_calls = [0]
    lock = threading.Lock()

    def slow_assume(_scope: SigningScope) -> Credentials:
        with lock:
            slow_calls[0] += 1
        time.sleep(0.05)
        return Credentials("STS.y", "s", "t", datetime.now(timezone.utc) + timedelta(seconds=43200))

    concurrent = ScopedSessions(max_entries=1000, refresh_before=3600, session_seconds=43200)
    barrier = threading.Barrier(64)

    def worker() -> None:
        barrier.wait()
        concurrent.get(scope, slow_assume)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return steady, slow_calls[0]


def start_cloud(data_dir: Path) -> Any:
    from local.cloud import CloudConfig, LocalCloud
    from local.sts import Role

    read_all = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject", "sts:AssumeRole"],
                                               "Resource": [f"acs:oss:*:*:{BUCKET}/*", SIGNER_ARN]},
                                              {"Effect": "Allow", "Action": ["oss:ListObjects"],  # the listing
                                               "Resource": [f"acs:oss:*:*:{BUCKET}"]}]}
    roles = [Role(arn=SIGNER_ARN, policies=[read_all], trust=[f"acs:ram::{ACCOUNT}:root"], max_session_duration=43200),
             Role(arn=FUNCTION_ARN, policies=[read_all], trust=[f"acs:ram::{ACCOUNT}:root"])]
    config = CloudConfig(data_dir=data_dir, root_keys={ROOT_AK: ROOT_SECRET}, buckets=[BUCKET], region=REGION,
                         roles=roles)
    return LocalCloud(config).start()


def function_context(cloud: Any) -> Any:
    """The function role's STS session, as FC hands it to a function (context.credentials)."""
    from alibabacloud_sts20150401 import models
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    client = Client(Config(access_key_id=ROOT_AK, access_key_secret=ROOT_SECRET, endpoint=cloud.sts_endpoint,
                           protocol="http", region_id=REGION))
    raw = client.assume_role(models.AssumeRoleRequest(role_arn=FUNCTION_ARN, role_session_name="fc",
                                                      duration_seconds=3600)).body.credentials
    return SimpleNamespace(request_id="bench", credentials=SimpleNamespace(
        access_key_id=raw.access_key_id, access_key_secret=raw.access_key_secret,
        security_token=raw.security_token, expiration=raw.expiration))


def configure(cloud: Any, *, signer: bool, symlink_check: bool) -> None:
    from shared import credentials, http

    os.environ.update({
        "OSS_BUCKET": BUCKET, "OSS_REGION": REGION, "AUTH_MODE": "apikey", "LOG_LEVEL": "warning",
        "OSS_ENDPOINT": f"http://{cloud.oss_endpoint}", "STS_ENDPOINT": f"http://{cloud.sts_endpoint}",
        "AUTH_API_KEYS": json.dumps({hashlib.sha256(API_KEY.encode()).hexdigest():
                                     {"name": "bench", "scope": "users/alice/"}}),
        "SIGNER_ROLE_ARN": SIGNER_ARN if signer else "",
        "URL_SYMLINK_CHECK": "true" if symlink_check else "false",
    })
    http.reset_settings()
    credentials.reset()


def sign_event(body: dict[str, Any]) -> str:
    return json.dumps({
        "version": "v1", "rawPath": "/sign", "isBase64Encoded": False, "body": json.dumps(body),
        "headers": {"x-api-key": API_KEY, "content-type": "application/json"}, "queryParameters": {},
        "requestContext": {"requestId": "bench", "http": {"method": "POST", "path": "/sign", "sourceIp": "127.0.0.1"}},
    })


def call(context: Any, body: dict[str, Any]) -> dict[str, Any]:
    from functions.sign.handler import handler

    response = handler(sign_event(body), context)
    assert response["statusCode"] == 200, response["body"][:300]
    return json.loads(response["body"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    steady, concurrent_calls = sts_calls_per_scope_per_hour()
    print(f"STS calls per scope per hour (one /sign a minute, 48 h, 43200 s sessions refreshed 3600 s early): "
          f"{steady:.3f}")
    print(f"STS calls for 64 concurrent misses on one scope: {concurrent_calls}")

    with tempfile.TemporaryDirectory() as tmp:
        cloud = start_cloud(Path(tmp))
        try:
            import oss2

            bucket = oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), f"http://{cloud.oss_endpoint}", BUCKET,
                                 region=REGION)
            keys = [f"users/alice/photos/{n:04d}.jpg" for n in range(100)]
            for key in keys:
                bucket.put_object(key, b"x")
            context = function_context(cloud)
            one = {"key": keys[0], "expires": 600}
            batch = {"keys": keys, "expires": 600}
            rows = []
            for label, signer, check in (("function credentials (today)", False, False),
                                         ("narrowed signer session, cache hit", True, False),
                                         ("narrowed session + symlink check", True, True)):
                configure(cloud, signer=signer, symlink_check=check)
                url = call(context, one)["url"]
                single = median_seconds(args.rounds, lambda: call(context, one))
                many = median_seconds(max(args.rounds // 20, 5), lambda: call(context, batch))
                rows.append((label, single, many, len(url)))
            base_single, base_batch, base_length = rows[0][1], rows[0][2], rows[0][3]
            print(f"{'in-process /sign':<40} {'1 key':>10} {'ratio':>7} {'100 keys':>10} {'ratio':>7} "
                  f"{'URL chars':>10}")
            for label, single, many, length in rows:
                print(f"{label:<40} {single * 1e3:>8.3f}ms {single / base_single:>6.2f}x {many * 1e3:>8.2f}ms "
                      f"{many / base_batch:>6.2f}x {length:>10}")
            check_single = rows[2][1] - rows[1][1]
            check_batch = rows[2][2] - rows[1][2]
            print(f"symlink check: +{check_single * 1e3:.3f} ms per single-key call (one HEAD), "
                  f"+{check_batch * 1e3:.2f} ms per 100-key batch ({check_batch * 1e3 / 100:.3f} ms per key)")
            print(f"URL length: +{rows[1][3] - base_length} characters with the emulator's tokens "
                  f"({rows[1][3]} vs {base_length})")
        finally:
            cloud.stop()


if __name__ == "__main__":
    main()
