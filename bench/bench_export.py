"""Benchmark the export function against a naive oss2 loop, on the local cloud.

For each size (default 100k and 1M objects, seeded straight into the emulator's index):
- ours: the export handler in its gateway worker process (timer event -> list 1000/page -> one bound signer ->
  CSV rows streamed into an 8 MiB-part multipart upload). Wall time of the invocation, rows per second, and
  the worker's peak RSS during that run (VmHWM, reset before each run through /proc/<pid>/clear_refs).
- naive: in a separate process, oss2.ObjectIteratorV2 over the same prefix, ``bucket.sign_url`` per key (V4,
  the same STS credentials), rows built in memory and uploaded with one put_object, as a hand-written script
  would. Wall time, rows per second, peak RSS (ru_maxrss).

    .venv/bin/python bench/bench_export.py [--sizes 100000,1000000] [--naive-max 100000]

Both run against the same emulator in this process; the machine's two cores are shared by the emulator and
the process under test, so absolute figures are pessimistic and the ratio is the meaningful number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.up import start_stack

NAIVE = r"""
import io, json, resource, sys, time
import oss2
args = json.loads(sys.argv[1])
auth = oss2.StsAuth(args["ak"], args["secret"], args["token"], auth_version=oss2.AUTH_VERSION_4)
bucket = oss2.Bucket(auth, args["endpoint"], args["bucket"], region=args["region"])
started = time.perf_counter()
out = io.StringIO()
out.write("key,url,size,etag,last_modified\r\n")
rows = 0
for obj in oss2.ObjectIteratorV2(bucket, prefix=args["prefix"], max_keys=1000):
    url = bucket.sign_url("GET", obj.key, args["expires"], slash_safe=True)
    out.write(f"{obj.key},{url},{obj.size},{obj.etag},{obj.last_modified}\r\n")
    rows += 1
bucket.put_object(args["output"], out.getvalue().encode())
wall = time.perf_counter() - started
print(json.dumps({"rows": rows, "wall": wall, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):  # resets VmHWM to the current RSS (Linux >= 4.0)
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def run_ours(stack: Any, prefix: str, count: int, run: int) -> dict[str, Any]:
    gateway = stack.gateway
    spec = stack.template.function_by_short_name("export")
    # warm the worker (import, credentials) so the figure is the export, not the cold start
    warm = {"triggerTime": "2020-01-01T00:00:00Z", "triggerName": f"warm-{prefix.strip('/')}-{run}",
            "payload": json.dumps({"prefixes": ["warm/"]})}
    gateway.invoke("export", json.dumps(warm).encode())
    worker = gateway.pools[spec.name].all[0]
    pid = worker.process.pid
    reset_peak(pid)
    before = vm_hwm_kib(pid)
    tick = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"triggerTime": tick, "triggerName": f"bench-{prefix.strip('/')}-{run}",
             "payload": json.dumps({"prefixes": [prefix], "format": "csv", "notify": False})}
    started = time.perf_counter()
    result = gateway.invoke("export", json.dumps(event).encode())
    wall = time.perf_counter() - started
    if result.get("status") != "done" or result.get("rows") != count:
        raise SystemExit(f"export did not finish as expected: { {k: v for k, v in result.items() if k != 'url'} }")
    return {"rows": result["rows"], "wall": wall, "rate": result["rows"] / wall, "peak_rss_mib": vm_hwm_kib(pid) / 1024,
            "rss_before_mib": before / 1024, "parts": result["parts"], "bytes": result["bytes"]}


def run_naive(stack: Any, prefix: str, count: int, run: int) -> dict[str, Any]:
    spec = stack.template.function_by_short_name("export")
    creds = stack.gateway.function_credentials(spec)
    args = {"ak": creds.access_key_id, "secret": creds.access_key_secret, "token": creds.security_token,
            "endpoint": f"http://{stack.cloud.oss_endpoint}", "bucket": "demo-bucket", "region": "cn-hangzhou",
            "prefix": prefix, "expires": 86400, "output": f"_exports/naive/{prefix.strip('/')}-{run}.csv"}
    done = subprocess.run([sys.executable, "-c", NAIVE, json.dumps(args)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["rows"] != count:
        raise SystemExit(f"naive loop listed {figures['rows']} rows, expected {count}")
    return {"rows": figures["rows"], "wall": figures["wall"], "rate": figures["rows"] / figures["wall"],
            "peak_rss_mib": figures["maxrss_kib"] / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma list of object counts")
    parser.add_argument("--naive-max", type=int, default=100000, help="largest size the naive loop also runs")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and contender; the best is kept")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(data_dir=Path(tmp), auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                            echo_logs=False, seed=False)
        try:
            for count in sizes:
                prefix = f"bench{count}/"
                started = time.perf_counter()
                stack.cloud.storage.seed_objects(
                    "demo-bucket", (f"{prefix}{i // 1000:04d}/object-{i:07d}.bin" for i in range(count)),
                    body=b"benchmark object")
                print(f"seeded {count:,} objects in {time.perf_counter() - started:.1f} s", flush=True)
                ours = max((run_ours(stack, prefix, count, run) for run in range(args.repeat)),
                           key=lambda figures: figures["rate"])
                print(f"[{count:>9,}] ours : {ours['wall']:7.1f} s  {ours['rate']:9,.0f} rows/s  "
                      f"peak RSS {ours['peak_rss_mib']:6.1f} MiB (idle {ours['rss_before_mib']:.1f})  "
                      f"{ours['parts']} parts, {ours['bytes'] / 2**20:.0f} MiB", flush=True)
                if count <= args.naive_max:
                    naive = max((run_naive(stack, prefix, count, run) for run in range(args.repeat)),
                                key=lambda figures: figures["rate"])
                    print(f"[{count:>9,}] naive: {naive['wall']:7.1f} s  {naive['rate']:9,.0f} rows/s  "
                          f"peak RSS {naive['peak_rss_mib']:6.1f} MiB", flush=True)
                    print(f"[{count:>9,}] speed-up x{ours['rate'] / naive['rate']:.1f}", flush=True)
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
