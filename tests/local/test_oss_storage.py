"""Durability across restarts, listing semantics against a brute-force model, and listing speed."""

from __future__ import annotations

import os
from pathlib import Path

import oss2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.cloud import LocalCloud
from local.oss.listing import list_page
from local.oss.storage import Storage
from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET, Clock, Env, make_config


def root_bucket(endpoint: str, bucket: str = BUCKET) -> oss2.Bucket:
    return oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), endpoint, bucket, region=REGION)


def test_restart_keeps_every_object(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = Clock()
    expected: dict[str, bytes] = {}
    with LocalCloud(make_config(data, clock)) as cloud:
        bucket = root_bucket("http://" + cloud.oss_endpoint)
        for i in range(30):
            expected[f"k/{i}"] = os.urandom(100 + i)
            bucket.put_object(f"k/{i}", expected[f"k/{i}"], headers={"x-oss-meta-i": str(i)})
        bucket.put_object("k/0", b"overwritten")
        expected["k/0"] = b"overwritten"
        bucket.delete_object("k/1")
        del expected["k/1"]
        upload_id = bucket.init_multipart_upload("k/mp").upload_id
        parts = [os.urandom(100 * 1024), b"tail"]
        infos = [oss2.models.PartInfo(n, bucket.upload_part("k/mp", upload_id, n, d).etag)
                 for n, d in enumerate(parts, start=1)]
        bucket.complete_multipart_upload("k/mp", upload_id, infos)
        expected["k/mp"] = b"".join(parts)
        pending = bucket.init_multipart_upload("k/pending").upload_id
        bucket.upload_part("k/pending", pending, 1, b"part")
        session = cloud.token_store.issue(cloud.config.roles[0], "survivor", 3600, None)
        root_bucket("http://" + cloud.oss_endpoint).create_bucket()  # idempotent on an existing bucket
        oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), "http://" + cloud.oss_endpoint, "created-later",
                    region=REGION).create_bucket()

    with LocalCloud(make_config(data, clock, buckets=[], cors={}, public_read=[])) as cloud:
        endpoint = "http://" + cloud.oss_endpoint
        bucket = root_bucket(endpoint)
        listed = [o.key for o in oss2.ObjectIterator(bucket, prefix="k/")]
        assert listed == sorted(expected)
        for key, body in expected.items():
            assert bucket.get_object(key).read() == body
        assert bucket.head_object("k/5").headers["x-oss-meta-i"] == "5"
        assert [p.part_number for p in bucket.list_parts("k/pending", pending).parts] == [1]
        sts = oss2.Bucket(oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token,
                                       auth_version="v4"), endpoint, BUCKET, region=REGION)
        assert sts.get_object("k/2").read() == expected["k/2"]
        assert root_bucket(endpoint, "created-later").get_bucket_info().name == "created-later"
    # no stray temporary files, and one blob per live object plus the pending part
    assert list((data / "oss" / "tmp").iterdir()) == []
    blobs = [p for p in (data / "oss" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == len(expected) + 1


# -- listing semantics: the SQL paging against a brute-force model --------------------------------
def model_list(keys: list[str], prefix: str, delimiter: str, after: str) -> list[tuple[str, str]]:
    """Every entry (kind, name) after the marker, in order, the slow obvious way."""
    entries: list[tuple[str, str]] = []
    seen_prefixes: set[str] = set()
    for key in sorted(keys):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common not in seen_prefixes:
                seen_prefixes.add(common)
                entries.append(("prefix", common))
        else:
            entries.append(("key", key))
    result = []
    for kind, name in entries:
        if name <= after:
            continue
        if kind == "prefix" and after.startswith(name):
            continue  # the marker lies inside this common prefix: it was already reported
        result.append((kind, name))
    return result


@pytest.fixture(scope="module")
def plain_storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    return Storage(tmp_path_factory.mktemp("model"))


key_text = st.text(alphabet="ab/-é+ ", min_size=1, max_size=7)


@settings(max_examples=120, deadline=None)
@given(keys=st.lists(key_text, max_size=40, unique=True), prefix=st.sampled_from(["", "a", "a/", "b/", "é"]),
       delimiter=st.sampled_from(["", "/", "-", "ab"]), max_keys=st.integers(1, 7))
def test_paging_matches_model(plain_storage: Storage, keys: list[str], prefix: str, delimiter: str,
                              max_keys: int) -> None:
    bucket = f"model-{abs(hash((tuple(keys), prefix, delimiter, max_keys)))}"
    plain_storage.seed_objects(bucket, keys)
    expected = model_list(keys, prefix, delimiter, "")
    collected: list[tuple[str, str]] = []
    after = ""
    for _ in range(100):
        page = list_page(plain_storage, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys)
        entries = sorted([("key", r.key) for r in page.contents] + [("prefix", p) for p in page.common_prefixes],
                         key=lambda item: item[1])
        assert len(entries) <= max_keys
        collected += entries
        if not page.truncated:
            break
        assert page.next_position == entries[-1][1]
        assert model_list(keys, prefix, delimiter, page.next_position) == expected[len(collected):]
        after = page.next_position
    assert collected == expected


# -- a large bucket ------------------------------------------------------------------------------------
# How fast pages come at the start, middle and end of a large bucket is bench/bench_emulator.py's question
# (ListObjects pages per second at 10k and 1M objects); here, that 50k objects list completely and correctly.
@pytest.mark.slow
def test_a_large_bucket_lists_every_object_once(env: Env) -> None:
    count = 50_000
    env.cloud.storage.seed_objects(BUCKET, (f"data/{i // 100:04d}/{i:08d}.bin" for i in range(count)))
    bucket = root_bucket(env.endpoint)
    listed: list[str] = []
    marker = ""
    while True:
        result = bucket.list_objects(prefix="data/", marker=marker, max_keys=1000)
        listed += [item.key for item in result.object_list]
        if not result.is_truncated:
            break
        marker = result.next_marker
    assert listed == [f"data/{i // 100:04d}/{i:08d}.bin" for i in range(count)]
    # a delimiter listing over 500 directories jumps over each one instead of scanning 50k rows
    directories = bucket.list_objects(prefix="data/", delimiter="/", max_keys=1000)
    assert directories.prefix_list == [f"data/{d:04d}/" for d in range(500)] and not directories.object_list


def test_an_index_from_before_crc_and_symlinks_is_upgraded(tmp_path: Path) -> None:
    """A data directory kept across versions: the columns added later are created on open."""
    import sqlite3

    root = tmp_path / "old"
    root.mkdir()
    with sqlite3.connect(root / "index.sqlite3") as conn:
        conn.executescript("""
            CREATE TABLE buckets (name TEXT PRIMARY KEY, created REAL NOT NULL, cors TEXT NOT NULL DEFAULT '[]',
                                  public_read INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE objects (bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
                                  last_modified REAL NOT NULL, content_type TEXT NOT NULL, metadata TEXT NOT NULL,
                                  path TEXT NOT NULL, object_type TEXT NOT NULL DEFAULT 'Normal',
                                  PRIMARY KEY (bucket, key)) WITHOUT ROWID;
            CREATE TABLE parts (upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL,
                                etag TEXT NOT NULL, md5 BLOB NOT NULL, last_modified REAL NOT NULL, path TEXT NOT NULL,
                                PRIMARY KEY (upload_id, part_number)) WITHOUT ROWID;
            INSERT INTO buckets (name, created) VALUES ('demo', 0);
            INSERT INTO objects VALUES ('demo', 'old', 1, 'ETAG', 0, 'text/plain', '{}', 'aa/old', 'Normal');
        """)
    storage = Storage(root)
    old = storage.get_object("demo", "old")
    assert old is not None and old.crc64 is None and old.symlink_target is None
    assert storage.bucket("demo")["cors_vary"] is False
    blob = storage.write_blob([b"new"])
    storage.put_object(old.__class__("demo", "new", blob.size, blob.etag, 1.0, "text/plain", {}, blob.path,
                                     crc64=blob.crc64))
    assert storage.get_object("demo", "new").crc64 == blob.crc64
    storage.close()
