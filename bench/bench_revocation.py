"""What revocable proxy links cost a download (shared/revocation.py).

1. Per download, in process: checking a proxy link (links.verify_link: HMAC-SHA256, constant-time compare) alone,
   and with the revocation check (link id = one SHA-256, a set lookup in the instance's cached list of 10,000
   revoked ids). The ratio is what revocation adds to the link check.
2. Per instance every 30 s: reading the list from the local OSS emulator (ListObjectsV2 pages of 1000) for 0, 100
   and 2,000 records: the only OSS requests revocation makes on the download path.

    .venv/bin/python bench/bench_revocation.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import links, revocation

SECRET = "bench-revocation-link-secret-0123456789"
ROOT_AK, ROOT_SECRET = "LTAI5tBenchRevocation01", "bench-revocation-root-secret-0123456789"  # emulator-only
BUCKET, REGION = "demo-bucket", "cn-hangzhou"


def per_call_us(function, rounds: int) -> float:
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            function()
        samples.append((time.perf_counter() - started) / rounds * 1e6)
    return statistics.median(samples)


def download_path(rounds: int) -> None:
    key = "exampledir/report 2026.pdf"
    url = links.make_link("https://files-api.example.com", key, secret=SECRET, expires_at=int(time.time()) + 3600,
                          options={"disposition": "attachment", "filename": "report.pdf"})
    query = dict(parse_qsl(urlsplit(url).query))
    revoked = [revocation.link_id(f"other-link-{n}") for n in range(10_000)]
    cache = revocation.RevokedLinks()
    cache.contains("warm", lambda: [revocation.PREFIX + identifier for identifier in revoked])

    def verify() -> None:
        links.verify_link(key, query, secret=SECRET, now=time.time())

    def verify_and_check() -> None:
        links.verify_link(key, query, secret=SECRET, now=time.time())
        if cache.contains(revocation.link_id(query["sig"]), list):
            raise AssertionError("not revoked")

    alone = per_call_us(verify, rounds)
    checked = per_call_us(verify_and_check, rounds)
    print(f"proxy link check per download: {alone:.2f} us alone, {checked:.2f} us with the revocation check "
          f"(+{checked - alone:.2f} us, {checked / alone:.2f}x; list of 10,000 ids cached)")


def refresh_cost() -> None:
    import oss2

    from local.cloud import CloudConfig, LocalCloud
    from shared.config import load
    from shared.signing import Credentials
    from shared.storage import OssClient

    with tempfile.TemporaryDirectory() as data, LocalCloud(CloudConfig(
            data_dir=Path(data), root_keys={ROOT_AK: ROOT_SECRET}, buckets=[BUCKET], region=REGION)) as cloud:
        bucket = oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), f"http://{cloud.oss_endpoint}", BUCKET, region=REGION)
        settings = load("download", {"OSS_BUCKET": BUCKET, "OSS_REGION": REGION, "AUTH_MODE": "none",
                                     "AUTH_ANONYMOUS_SCOPE": "a/", "OSS_ENDPOINT": f"http://{cloud.oss_endpoint}"})
        credentials = Credentials(ROOT_AK, ROOT_SECRET)
        client = OssClient.from_settings(settings, lambda: credentials, max_retries=0)
        written = 0
        for records in (0, 100, 2000):
            for n in range(written, records):
                bucket.put_object(revocation.record_key(revocation.link_id(f"link-{n}")), b"{}")
            written = records
            samples = []
            for _ in range(7):
                started = time.perf_counter()
                names = [info.key for info in client.iter_objects(revocation.PREFIX)]
                samples.append((time.perf_counter() - started) * 1000)
            assert len(names) == records
            print(f"list refresh with {records:>5} records: {statistics.median(samples):.2f} ms "
                  f"(once per instance every {revocation.REFRESH_SECONDS} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    download_path(args.rounds)
    refresh_cost()


if __name__ == "__main__":
    main()
