"""Benchmark the local OSS emulator.

1. GET throughput of one large object through the emulator (presigned V4 URL, sendfile) versus
   Python's built-in http.server (SimpleHTTPRequestHandler on ThreadingHTTPServer) serving the same file.
   The emulator sends x-oss-hash-crc64ecma with every GET (computed at upload, stored in the index).
2. PUT throughput (presigned V4 URL) with CRC-64 on: the emulator verifies the signature, computes MD5
   (the ETag) and CRC-64/ECMA, writes the blob and indexes it, against two http.server PUT handlers in the
   same run: one that stores the body and answers its MD5 as ETag (the least an object store does:
   like for like) and one that only stores it (a floor no object store can reach).
3. ListObjects pages per second (1000 keys per page) at 10k and 1M objects, from the start, the middle
   and the end of the bucket (the target is a flat figure).

    .venv/bin/python bench/bench_emulator.py [--size-mib 256] [--large 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import oss2

from local.cloud import CloudConfig, LocalCloud
from local.oss.storage import ObjectRecord

AK, SECRET = "LTAIbench", "bench-secret"  # local emulator keys, bench only
CHUNK = 1024 * 1024


def write_random_file(path: Path, size_mib: int) -> int:
    """Writes ``size_mib`` MiB of one random 1 MiB block repeated; returns the size in bytes."""
    with open(path, "wb") as out:
        block = os.urandom(CHUNK)
        for _ in range(size_mib):
            out.write(block)
    return path.stat().st_size


def fetch(url: str, connection: http.client.HTTPConnection | None = None) -> int:
    """GET the URL, discard the body in 1 MiB reads, return the byte count."""
    parts = urlsplit(url)
    own = connection is None
    connection = connection or http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        connection.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {parts.path}: HTTP {response.status} {response.read()[:300]!r}")
        total = 0
        while chunk := response.read(CHUNK):
            total += len(chunk)
        return total
    finally:
        if own:
            connection.close()


def curl_rate(url: str, size: int) -> float:
    """MiB/s as measured by curl (a native client, so the server rather than the client is measured)."""
    completed = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                                url], capture_output=True, text=True, check=True, timeout=300)
    status, downloaded, seconds = completed.stdout.split()
    if status != "200" or int(downloaded) != size:
        raise RuntimeError(f"curl GET: HTTP {status}, {downloaded} bytes")
    return size / float(seconds) / 2**20


def python_rate(url: str, size: int) -> float:
    started = time.perf_counter()
    if fetch(url) != size:
        raise RuntimeError("short body")
    return size / (time.perf_counter() - started) / 2**20


def bench_get(work: Path, size_mib: int, runs: int) -> None:
    source = work / "www" / "big.bin"
    source.parent.mkdir()
    size = write_random_file(source, size_mib)

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(source.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clients = {"python http.client": python_rate}
    if shutil.which("curl"):
        clients["curl"] = curl_rate
    try:
        with LocalCloud(CloudConfig(data_dir=work / "cloud", root_keys={AK: SECRET}, buckets=["bench"])) as cloud:
            with open(source, "rb") as body:
                blob = cloud.storage.write_blob(iter(functools.partial(body.read, CHUNK), b""))
            cloud.storage.put_object(ObjectRecord("bench", "big.bin", blob.size, blob.etag, time.time(),
                                                  "application/octet-stream", {}, blob.path, crc64=blob.crc64))
            bucket = oss2.Bucket(oss2.AuthV4(AK, SECRET), "http://" + cloud.oss_endpoint, "bench",
                                 region="cn-hangzhou")
            urls = {"emulator": bucket.sign_url("GET", "big.bin", 3600),
                    "http.server": f"http://127.0.0.1:{server.server_address[1]}/big.bin"}
            for url in urls.values():
                fetch(url)  # warm the page cache
            if "x-oss-hash-crc64ecma" not in bucket.head_object("big.bin").headers:
                raise RuntimeError("the emulator did not report x-oss-hash-crc64ecma")
            # Interleave the two servers run by run so background load hits both alike.
            rates: dict[tuple[str, str], list[float]] = {(client, name): [] for client in clients for name in urls}
            for _ in range(runs):
                for client, measure in clients.items():
                    for name, url in urls.items():
                        rates[(client, name)].append(measure(url, size))
    finally:
        server.shutdown()
        server.server_close()

    print(f"GET {size_mib} MiB object (the emulator answers its CRC-64), median of {runs} interleaved runs "
          "(best), MiB/s:")
    for client in clients:
        emulator, builtin = rates[(client, "emulator")], rates[(client, "http.server")]
        ratio = statistics.median(emulator) / statistics.median(builtin)
        print(f"  [{client:18}] emulator (V4 presigned URL, sendfile) {statistics.median(emulator):6.0f} "
              f"({max(emulator):.0f})  http.server SimpleHTTPRequestHandler {statistics.median(builtin):6.0f} "
              f"({max(builtin):.0f})  ratio {ratio:.2f}x")


class PutHandler(BaseHTTPRequestHandler):
    """http.server PUT baseline: stores the body (temp file + rename); with ``md5`` also answers its ETag."""

    protocol_version = "HTTP/1.1"
    directory: Path
    md5 = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        remaining = int(self.headers["Content-Length"])
        digest = hashlib.md5() if self.md5 else None  # an ETag, like the emulator's
        target = self.directory / "upload.bin"
        temporary = self.directory / f"upload.{threading.get_ident()}.tmp"
        with open(temporary, "wb") as out:
            while remaining:
                chunk = self.rfile.read(min(remaining, CHUNK))
                if not chunk:
                    raise ConnectionError("short body")
                if digest is not None:
                    digest.update(chunk)
                out.write(chunk)
                remaining -= len(chunk)
        os.replace(temporary, target)
        self.send_response(200)
        if digest is not None:
            self.send_header("ETag", f'"{digest.hexdigest().upper()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def curl_put_rate(url: str, source: Path, size: int) -> float:
    """MiB/s of a PUT of ``source`` as measured by curl (no Content-Type, no Expect wait)."""
    completed = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload} %{time_total}",
                                "-T", str(source), "-H", "Content-Type:", "-H", "Expect:", url],
                               capture_output=True, text=True, check=True, timeout=300)
    status, uploaded, seconds = completed.stdout.split()
    if status != "200" or int(float(uploaded)) != size:
        raise RuntimeError(f"curl PUT: HTTP {status}, {uploaded} bytes")
    return size / float(seconds) / 2**20


def python_put_rate(url: str, source: Path, size: int) -> float:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    try:
        with open(source, "rb") as body:
            connection.request("PUT", parts.path + ("?" + parts.query if parts.query else ""), body=body,
                               headers={"Content-Length": str(size)}, encode_chunked=False)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"PUT {parts.path}: HTTP {response.status}")
    finally:
        connection.close()
    return size / (time.perf_counter() - started) / 2**20


def start_put_servers(work: Path) -> dict[str, ThreadingHTTPServer]:
    """The two http.server PUT baselines, each storing into its own directory under ``work``."""
    servers = {}
    for name, md5 in (("http.server store+MD5", True), ("http.server store only", False)):
        directory = work / name.replace(" ", "_").replace("+", "_")
        directory.mkdir()
        handler = type("BoundPut", (PutHandler,), {"directory": directory, "md5": md5})
        servers[name] = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=servers[name].serve_forever, daemon=True).start()
    return servers


def bench_put(work: Path, size_mib: int, runs: int) -> None:
    source = work / "put-source.bin"
    size = write_random_file(source, size_mib)
    servers = start_put_servers(work)
    clients = {"python http.client": python_put_rate}
    if shutil.which("curl"):
        clients["curl"] = curl_put_rate
    try:
        with LocalCloud(CloudConfig(data_dir=work / "put-cloud", root_keys={AK: SECRET}, buckets=["bench"])) as cloud:
            bucket = oss2.Bucket(oss2.AuthV4(AK, SECRET), "http://" + cloud.oss_endpoint, "bench",
                                 region="cn-hangzhou")
            urls = {"emulator": bucket.sign_url("PUT", "upload.bin", 3600)}
            urls.update({name: f"http://127.0.0.1:{server.server_address[1]}/upload.bin"
                         for name, server in servers.items()})
            rates: dict[tuple[str, str], list[float]] = {(c, n): [] for c in clients for n in urls}
            for _ in range(runs):  # interleaved, so background load hits every server alike
                for client, measure in clients.items():
                    for name, url in urls.items():
                        rates[(client, name)].append(measure(url, source, size))
            crc = bucket.head_object("upload.bin").headers.get("x-oss-hash-crc64ecma")
            if crc is None:
                raise RuntimeError("the emulator did not report x-oss-hash-crc64ecma")
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
    print(f"PUT {size_mib} MiB object, median of {runs} interleaved runs (best), MiB/s; "
          "emulator = V4 presigned URL, MD5 + CRC-64 + blob + index:")
    print_put_rates(list(clients), list(servers), rates)


def print_put_rates(clients: list[str], baselines: list[str], rates: dict[tuple[str, str], list[float]]) -> None:
    """One line per client: the emulator's median (best) and each baseline's median with the ratio to it."""
    for client in clients:
        emulator = statistics.median(rates[(client, "emulator")])
        line = f"  [{client:18}] emulator {emulator:6.0f} ({max(rates[(client, 'emulator')]):.0f})"
        for name in baselines:
            other = statistics.median(rates[(client, name)])
            line += f"  {name} {other:6.0f} ratio {emulator / other:.2f}x"
        print(line)


def list_rate(cloud: LocalCloud, bucket: str, marker: str, pages: int) -> float:
    auth = oss2.Auth(AK, SECRET)
    endpoint = "http://" + cloud.oss_endpoint
    host, port = cloud.oss_endpoint.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    started = time.perf_counter()
    try:
        for _ in range(pages):
            request = oss2.http.Request("GET", f"{endpoint}/{bucket}/",
                                        params={"max-keys": "1000", "marker": marker})
            url = auth._sign_url(request, bucket, "", 600)
            parts = urlsplit(url)
            connection.request("GET", parts.path + "?" + parts.query)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or body.count(b"<Contents>") != 1000:
                raise RuntimeError(f"listing failed: HTTP {response.status}")
            marker = body.rsplit(b"<NextMarker>", 1)[1].split(b"</NextMarker>", 1)[0].decode()
    finally:
        connection.close()
    return pages / (time.perf_counter() - started)


def bench_list(work: Path, sizes: list[int], pages: int) -> None:
    print(f"ListObjects, 1000 keys per page, up to {pages} consecutive pages from each position (pages/s):")
    results = {}
    with LocalCloud(CloudConfig(data_dir=work / "list", root_keys={AK: SECRET})) as cloud:
        for count in sizes:
            name = f"list-{count}"
            cloud.storage.create_bucket(name)
            started = time.perf_counter()
            batch = 100_000
            for offset in range(0, count, batch):
                cloud.storage.seed_objects(name, (f"logs/{i // 1000:05d}/{i:09d}.json"
                                                  for i in range(offset, min(count, offset + batch))))
            seeded = time.perf_counter() - started
            pages_here = min(pages, count // 1000 - 1)
            last_start = max(0, count - (pages_here + 1) * 1000)
            middle = min(count // 2, last_start)
            positions = {"start": "", "middle": f"logs/{middle // 1000:05d}/{middle:09d}.json",
                         "end": f"logs/{last_start // 1000:05d}/{last_start:09d}.json"}
            list_rate(cloud, name, "", 3)  # warm-up: SQLite page cache, server thread
            rates = {where: list_rate(cloud, name, marker, pages_here) for where, marker in positions.items()}
            results[count] = rates
            print(f"  {count:>9,} objects (seeded in {seeded:5.1f}s): "
                  + "  ".join(f"{where} {rate:6.1f}" for where, rate in rates.items()))
    small, large = min(sizes), max(sizes)
    if small != large:
        ratio = statistics.mean(results[large].values()) / statistics.mean(results[small].values())
        print(f"  ratio {large:,} / {small:,} objects: {ratio:.2f}x (1.00 = perfectly flat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--transfers-only", action="store_true", help="GET and PUT only, no listing")
    parser.add_argument("--dir", default=None, help="work directory (default: the system temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-emulator-", dir=args.dir) as tmp:
        work = Path(tmp)
        bench_get(work, args.size_mib, args.runs)
        bench_put(work, args.size_mib, args.runs)
        if not args.transfers_only:
            bench_list(work, [args.small, args.large], args.pages)


if __name__ == "__main__":
    main()
