"""Benchmark the download proxy through the local gateway.

1. Redirect mode: latency of `GET /download/<key>` -> 302 (p50 / p95 / mean), with a kept-alive
   connection, against a plain GET of a tiny object from the emulator with a signed URL (the floor of
   any HTTP round trip on this machine).
2. Stream mode: throughput of `GET /download/<key>` serving the object itself (function in a worker
   process, base64 over the FC response) against fetching a signed URL of the same object directly
   from the emulator. Target: >= 0.8x of direct.

    .venv/bin/python bench/bench_download.py [--requests 300] [--sizes-kib 64,1024,5120]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import timings
from local.up import Stack, caller_headers, root_bucket, start_stack
from shared.keys import encode_key_path


class Client:
    """One kept-alive HTTP/1.1 connection to a loopback host:port."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def get(self, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        self.connection.request("GET", target, headers=headers or {})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def signed_url(stack: Stack, key: str, expires: int = 3600) -> str:
    request = urllib.request.Request(stack.gateway.url + "/sign?" + urlencode({"key": key, "expires": expires}),
                                     headers=caller_headers(stack))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["url"]


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def latencies(run: Callable[[], None], count: int) -> list[float]:
    return timings(run, count, warmups=min(20, count))


def summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {p50 * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms  mean {statistics.mean(timings) * 1000:6.2f} ms"


def redirect_latency(requests: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        stack = start_stack(data_dir=Path(data), auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                            echo_logs=False)
        try:
            key = "exampledir/exampleobject.txt"
            gateway = Client(stack.gateway.url)
            headers = caller_headers(stack)
            target = "/download/" + encode_key_path(key)

            def redirect() -> None:
                status, _ = gateway.get(target, headers)
                assert status == 302, status

            direct_target = target_of(signed_url(stack, key))

            def direct() -> None:
                # A fresh connection each time: on a kept-alive one the emulator answers small objects
                # ~40 ms late (Nagle + delayed ACK), which would flatter the comparison.
                oss = Client(f"http://{stack.cloud.oss_endpoint}")
                status, _ = oss.get(direct_target)
                oss.close()
                assert status == 200, status

            print(f"Redirect mode, {requests} sequential requests")
            via_gateway, from_emulator = latencies(redirect, requests), latencies(direct, requests)
            print(f"  GET /download/<key> -> 302 via the gateway (kept alive): {summary(via_gateway)}")
            print(f"  GET signed URL of a tiny object from the emulator:       {summary(from_emulator)}")
            gateway.close()
        finally:
            stack.stop()


def stream_throughput(sizes_kib: list[int], budget_seconds: float) -> None:
    largest = max(sizes_kib) * 1024
    with tempfile.TemporaryDirectory() as data:
        stack = start_stack(data_dir=Path(data), auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                            echo_logs=False, instances=1,
                            env={"download": {"DOWNLOAD_MODE": "stream",
                                              "DOWNLOAD_STREAM_MAX_BYTES": str(max(largest, 1024))}})
        try:
            bucket = root_bucket(stack)
            headers = caller_headers(stack)
            print(f"Stream mode throughput (median over ~{budget_seconds:.0f} s per case)")
            for size_kib in sizes_kib:
                key = f"exampledir/bench/blob-{size_kib}k.bin"
                body = bytes(range(256)) * (size_kib * 4)
                bucket.put_object(key, body)
                gateway = Client(stack.gateway.url)
                oss = Client(f"http://{stack.cloud.oss_endpoint}")
                proxy_target = "/download/" + encode_key_path(key)
                direct_target = target_of(signed_url(stack, key))

                def via_proxy(gateway: Client = gateway, target: str = proxy_target, size: int = len(body)) -> None:
                    status, payload = gateway.get(target, headers)
                    assert status == 200 and len(payload) == size, status

                def via_direct(oss: Client = oss, target: str = direct_target, size: int = len(body)) -> None:
                    status, payload = oss.get(target)
                    assert status == 200 and len(payload) == size, status

                rates = {"handler": in_process_rate(stack, key, len(body), budget_seconds)}
                for name, run in (("proxy", via_proxy), ("direct", via_direct)):
                    rates[name] = median_rate(run, len(body), budget_seconds)
                ratio = rates["proxy"] / rates["direct"]
                print(f"  {size_kib:6d} KiB: /download via gateway {rates['proxy']:7.1f} MiB/s | handler in process "
                      f"{rates['handler']:7.1f} MiB/s | direct from the emulator {rates['direct']:7.1f} MiB/s | "
                      f"gateway/direct {ratio:.2f}x, handler/direct {rates['handler'] / rates['direct']:.2f}x")
                gateway.close()
                oss.close()
        finally:
            stack.stop()


def median_rate(run: Callable[[], None], size: int, budget_seconds: float) -> float:
    """MiB/s of ``run`` (which moves ``size`` bytes): one warm-up, then the median over the time budget."""
    run()
    timings: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    while time.perf_counter() < deadline or len(timings) < 5:
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return size / statistics.median(timings) / 2**20


def in_process_rate(stack: Stack, key: str, size: int, budget_seconds: float) -> float:
    """The download function itself (event in, base64 FC response out), no gateway or worker IPC."""
    import os
    from types import SimpleNamespace

    from shared import http

    worker_env = stack.gateway._environment(stack.template.function_by_short_name("download"))
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in worker_env.items() if k not in {"PATH", "HOME", "PYTHONPATH"}})
    os.environ["LOG_LEVEL"] = "warning"  # one access line per request would be measured too
    http.reset_settings()
    try:
        from functions.download.handler import handler

        credentials = stack.gateway.function_credentials(stack.template.function_by_short_name("download"))
        context = SimpleNamespace(request_id="bench", credentials=SimpleNamespace(
            access_key_id=credentials.access_key_id, access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token, expiration=credentials.expiration))
        event = {"version": "v1", "rawPath": "/download/" + encode_key_path(key), "headers": caller_headers(stack),
                 "queryParameters": {}, "body": "", "isBase64Encoded": False,
                 "requestContext": {"requestId": "bench", "http": {"method": "GET", "sourceIp": "127.0.0.1"}}}

        def run() -> None:
            response = handler(event, context)
            assert response["statusCode"] == 200 and len(response["body"]) >= size, response["statusCode"]

        return median_rate(run, size, budget_seconds)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        http.reset_settings()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--sizes-kib", default="64,1024,5120")
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per stream case")
    args = parser.parse_args()
    redirect_latency(args.requests)
    stream_throughput([int(size) for size in args.sizes_kib.split(",")], args.seconds)


if __name__ == "__main__":
    main()
