"""Token handler benchmark: our own cost per issuance and the handler's cold start.

    .venv/bin/python bench/bench_token.py [--calls 2000] [--cold 5]

1. Per issuance, STS mocked at the shared/sts boundary (``client_for`` returns a fake client), so the
   figure is our code only: event parsing, authentication, policy building, cache lookup, response,
   logging. Cache disabled (every call builds a policy and "calls" STS) and cache hits are both shown.
2. Per issuance with the real SDK on a ``responses``-mocked wire, for reference (SDK request building and
   ACS3 signing included; the mock itself costs too).
3. Cold start: a fresh interpreter imports the handler and serves its first request (STS mocked at the
   boundary), median of ``--cold`` runs; plus the SDK import the first real STS call adds, vs ``import oss2``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

API_KEY = "bench-api-key-0123456789abcdef"
HS_SECRET = "bench-hs256-secret-0123456789abcdef"
ENV = {
    "OSS_BUCKET": "bench-bucket",
    "OSS_REGION": "cn-hangzhou",
    "STS_ROLE_ARN": "acs:ram::1234567890123456:role/vended",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tBenchFunctionKey",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-function-secret-0123456789",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "CAISbench-function-token",
    "LOG_LEVEL": "info",
}


def _settings_env(mode: str, cache: bool) -> dict[str, str]:
    import hashlib

    env = dict(ENV, STS_CACHE_SECONDS="1800" if cache else "0")
    if mode == "apikey":
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        env.update(AUTH_MODE="apikey", AUTH_API_KEYS=json.dumps({digest: {"name": "bench", "scope": "bench/"}}))
    elif mode == "jwt-hs256":
        env.update(AUTH_MODE="jwt", JWT_ISSUER="https://idp.bench/", JWT_AUDIENCE="bench", JWT_ALGORITHMS="HS256",
                   JWT_HS256_SECRET=HS_SECRET)
    else:  # jwt-rs256
        env.update(AUTH_MODE="jwt", JWT_ISSUER="https://idp.bench/", JWT_AUDIENCE="bench", JWT_ALGORITHMS="RS256",
                   JWT_PUBLIC_KEY=_rsa_key()[1])
    return env


_RSA: list[tuple[bytes, str]] = []


def _rsa_key() -> tuple[bytes, str]:
    """A 2048-bit RSA key pair (private PEM, public PEM), made once."""
    if not _RSA:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        _RSA.append((private, public))
    return _RSA[0]


def _event(mode: str) -> bytes:
    if mode == "apikey":
        headers = {"X-Api-Key": API_KEY}
    else:
        import jwt

        now = int(time.time())
        key, algorithm = (HS_SECRET, "HS256") if mode == "jwt-hs256" else (_rsa_key()[0], "RS256")
        token = jwt.encode({"iss": "https://idp.bench/", "aud": "bench", "sub": "alice", "exp": now + 3600,
                            "nbf": now - 5}, key, algorithm=algorithm)
        headers = {"Authorization": f"Bearer {token}"}
    return json.dumps({
        "version": "v1", "rawPath": "/sts", "body": '{"prefix":"reports","actions":["read","list"]}',
        "isBase64Encoded": False, "headers": {"Content-Type": "application/json", **headers},
        "queryParameters": {},
        "requestContext": {"requestId": "bench-req", "http": {"method": "POST", "path": "/sts",
                                                              "sourceIp": "203.0.113.7"}},
    }).encode()


def _fake_sts() -> None:
    """Replace the STS client by one that answers at once (the shared/sts module boundary)."""
    from shared import sts
    from shared.signing import Credentials

    assumed = sts.AssumedRole(
        credentials=Credentials("STS.bench", "bench-vended-secret-0123456789", "CAISbench-vended-token",
                                datetime.now(timezone.utc) + timedelta(hours=1)),
        assumed_role_arn="acs:ram::1234567890123456:role/vended/bench", request_id="bench")

    class FakeClient:
        def assume_role(self, *args: object, **kwargs: object) -> object:
            return assumed

    sts.client_for = lambda settings, caller: FakeClient()


def _per_call(handler: object, event: bytes, calls: int) -> float:
    context = SimpleNamespace(request_id="bench-req", credentials=None)
    for _ in range(50):  # warm-up
        handler(event, context)  # type: ignore[operator]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            response = handler(event, context)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
        assert response["statusCode"] == 200, response  # type: ignore[index]
    return best / calls * 1e6


def _configure(mode: str, cache: bool) -> None:
    from shared import auth, http, sts

    os.environ.update(_settings_env(mode, cache))
    http.reset_settings()
    auth.reset_caches()
    sts.vended_cache.clear()


def bench_boundary(calls: int) -> dict[str, float]:
    from shared import logging as log

    log.configure("info", stream=io.StringIO())  # real JSON logging, not to the terminal
    _fake_sts()
    from functions.token.handler import handler

    results = {}
    for mode in ("apikey", "jwt-hs256", "jwt-rs256"):
        for cache in (False, True):
            _configure(mode, cache)
            results[f"{mode}, {'cache hit' if cache else 'no cache'}"] = _per_call(handler, _event(mode), calls)
    return results


def bench_responses(calls: int) -> float:
    import importlib

    import responses

    from shared import sts

    importlib.reload(sts)  # undo the boundary fake
    import functions.token.handler as token_handler

    importlib.reload(token_handler)
    _configure("apikey", cache=False)
    body = {"RequestId": "R", "AssumedRoleUser": {"Arn": "a", "AssumedRoleId": "b"},
            "Credentials": {"AccessKeyId": "STS.x", "AccessKeySecret": "bench-vended-secret-0123456789",
                            "SecurityToken": "CAISbench", "Expiration": "2099-01-01T00:00:00Z"}}
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, re.compile(r"https://sts\.cn-hangzhou\.aliyuncs\.com/.*"), json=body)
        return _per_call(token_handler.handler, _event("apikey"), calls)


COLD_SCRIPT = """
import json, sys, time, io
start = time.perf_counter()
sys.path.insert(0, {repo!r})
import functions.token.handler as h
imported = time.perf_counter()
sys.path.insert(0, {bench!r})
import bench_token
bench_token._fake_sts()
from shared import logging as log
log.configure("info", stream=io.StringIO())
h.handler(bench_token._event({mode!r}), None)
first = time.perf_counter()
print(json.dumps({{"import_ms": (imported - start) * 1e3, "first_call_ms": (first - start) * 1e3}}))
"""


def _median_subprocess(code: str, runs: int, env: dict[str, str]) -> dict[str, float]:
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        samples.append(json.loads(output.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def bench_cold(runs: int) -> dict[str, float]:
    results = {}
    for mode in ("apikey", "jwt-hs256"):
        env = {**os.environ, **_settings_env(mode, False)}
        script = COLD_SCRIPT.format(repo=str(REPO), bench=str(REPO / "bench"), mode=mode)
        measured = _median_subprocess(script, runs, env)
        results.setdefault("handler import", measured["import_ms"])
        results[f"handler import + first call ({mode})"] = measured["first_call_ms"]
    timed = ("import json, time; start = time.perf_counter(); import {module}; "
             "print(json.dumps({{'ms': (time.perf_counter() - start) * 1e3}}))")
    results["STS SDK import (first real STS call)"] = _median_subprocess(
        timed.format(module="alibabacloud_sts20150401.client"), runs, dict(os.environ))["ms"]
    results["import oss2"] = _median_subprocess(timed.format(module="oss2"), runs, dict(os.environ))["ms"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=5)
    args = parser.parse_args()

    print(f"Token handler, per issuance (best of 3 x {args.calls} calls), STS mocked at the module boundary:")
    for name, micros in bench_boundary(args.calls).items():
        print(f"  {name:<26} {micros:8.1f} µs")
    with_responses = bench_responses(max(200, args.calls // 10))
    print(f"Per issuance with the real STS SDK on a `responses` wire (reference): {with_responses:8.1f} µs")
    print(f"\nCold start (median of {args.cold} fresh interpreters):")
    cold = bench_cold(args.cold)
    for name, millis in cold.items():
        print(f"  {name:<40} {millis:8.1f} ms")
    for mode in ("apikey", "jwt-hs256"):
        ratio = cold[f"handler import + first call ({mode})"] / cold["import oss2"]
        print(f"  handler import + first call ({mode}) / import oss2 = {ratio:.2f}")


if __name__ == "__main__":
    main()
