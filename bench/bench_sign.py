"""Benchmark batch signing: the sign function (1000 keys per call) against oss2 `sign_url` in a loop.

1. In process: `functions.sign.handler.handler(event, context)` with a real FC HTTP event (POST /sign,
   1000 keys, API-key auth, JSON in and out) — the whole function minus the network.
2. Through the local gateway: POST /sign over HTTP to the function running in a worker process with
   its template role (STS) credentials.
3. Reference: oss2 2.19.1 `Bucket.sign_url("GET", key, 600, slash_safe=True)` for the same 1000 keys,
   V4 (oss2.AuthV4) — the SDK way of doing the same job, bucket object built once.
   Also with STS credentials (oss2.StsAuth V4) for the gateway comparison, whose URLs carry a token.

    .venv/bin/python bench/bench_sign.py [--keys 1000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds

AK, SECRET = "LTAI5tBenchSignKey0001", "bench-sign-secret-0123456789"  # local-only keys, bench only
TOKEN = "CAIS" + "b" * 600  # an STS-token-sized string
API_KEY = "bench-api-key-0123456789abcdef"
BUCKET, REGION = "demo-bucket", "cn-hangzhou"



def keys_for(count: int) -> list[str]:
    return [f"exampledir/reports/2026/\u62a5\u544a {n:05d}+final.pdf" for n in range(count)]


def in_process(keys: list[str], rounds: int, token: str | None) -> float:
    os.environ.update({
        "OSS_BUCKET": BUCKET, "OSS_REGION": REGION, "AUTH_MODE": "apikey", "LOG_LEVEL": "warning",
        "URL_SYMLINK_CHECK": "false",  # signing alone (no object store here); bench_scoped_signing.py costs the check
        "AUTH_API_KEYS": json.dumps({hashlib.sha256(API_KEY.encode()).hexdigest():
                                     {"name": "bench", "scope": "exampledir/"}}),
    })
    from functions.sign.handler import handler

    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 36 * 3600))
    context = SimpleNamespace(request_id="bench", credentials=SimpleNamespace(
        access_key_id=("STS." if token else "") + AK, access_key_secret=SECRET, security_token=token,
        expiration=expiration))
    event = json.dumps({
        "version": "v1", "rawPath": "/sign", "isBase64Encoded": False,
        "body": json.dumps({"keys": keys, "expires": 600}),
        "headers": {"x-api-key": API_KEY, "content-type": "application/json"}, "queryParameters": {},
        "requestContext": {"requestId": "bench", "http": {"method": "POST", "path": "/sign", "sourceIp": "127.0.0.1"}},
    })  # FC hands the function the event as bytes/str; parsing it is part of the cost

    def run() -> None:
        response = handler(event, context)
        assert response["statusCode"] == 200, response["body"][:300]

    run()
    return median_seconds(rounds, run)


def with_oss2(keys: list[str], rounds: int, token: str | None) -> float:
    import oss2

    if token:
        auth = oss2.StsAuth("STS." + AK, SECRET, token, auth_version=oss2.AUTH_VERSION_4)
    else:
        auth = oss2.AuthV4(AK, SECRET)
    bucket = oss2.Bucket(auth, f"https://oss-{REGION}.aliyuncs.com", BUCKET, region=REGION)

    def run() -> None:
        urls = [bucket.sign_url("GET", key, 600, slash_safe=True) for key in keys]
        json.dumps([{"key": k, "url": u} for k, u in zip(keys, urls, strict=True)])  # same output work

    return median_seconds(rounds, run)


def through_gateway(keys: list[str], rounds: int) -> tuple[float, int]:
    from local.up import caller_headers, start_stack

    with tempfile.TemporaryDirectory() as data:
        stack = start_stack(data_dir=Path(data), auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                            echo_logs=False, seed=False)
        try:
            body = json.dumps({"keys": keys, "expires": 600}).encode()
            headers = {**caller_headers(stack), "Content-Type": "application/json"}
            sizes: list[int] = []

            def run() -> None:
                request = urllib.request.Request(stack.gateway.url + "/sign", data=body, headers=headers)
                with urllib.request.urlopen(request, timeout=60) as response:
                    payload = response.read()
                data_ = json.loads(payload)
                assert data_["failed"] == 0, data_["results"][0]
                sizes.append(len(data_["results"][0]["url"]))

            return median_seconds(rounds, run), sizes[-1]
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    keys = keys_for(args.keys)
    n = len(keys)

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<58} {seconds * 1000:8.1f} ms/call  {n / seconds:10,.0f} URLs/s  "
              f"{seconds / n * 1e6:6.1f} us/URL")

    print(f"Batch signing, {n} keys per call, median of {args.rounds} rounds (V4, GET, 600 s)")
    ours_ak = in_process(keys, args.rounds, None)
    ours_sts = in_process(keys, args.rounds, TOKEN)
    oss2_ak = with_oss2(keys, args.rounds, None)
    oss2_sts = with_oss2(keys, args.rounds, TOKEN)
    line("sign handler in process (event -> JSON answer), AccessKey", ours_ak)
    line("oss2 sign_url loop, AuthV4", oss2_ak)
    line("sign handler in process, STS credentials", ours_sts)
    line("oss2 sign_url loop, StsAuth V4", oss2_sts)
    gateway, url_length = through_gateway(keys, max(5, args.rounds // 3))
    line("sign handler through the gateway (HTTP + worker), STS", gateway)
    print(f"  URL length with the function's STS token: {url_length} characters")
    print("Ratios (higher is better, target >= 5x):")
    print(f"  in process vs oss2, AccessKey: {oss2_ak / ours_ak:5.1f}x")
    print(f"  in process vs oss2, STS:       {oss2_sts / ours_sts:5.1f}x")
    print(f"  gateway vs oss2 (STS):         {oss2_sts / gateway:5.1f}x")


if __name__ == "__main__":
    main()
