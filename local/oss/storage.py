"""Durable object storage for the OSS emulator: a SQLite index plus immutable blob files.

Bodies live in files named by a random id (never by key) under ``blobs/``; every write goes to a
temporary file first and is renamed into place, then the index row is committed. Listing reads the
index only (``key > ? ORDER BY key LIMIT ?`` on the primary key), so it never walks the directory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple, overload

from local.oss import crc64

CHUNK = 1024 * 1024
_SCAN_COLUMNS = "key, size, etag, last_modified, object_type"
_SCAN_FROM_INCLUSIVE = f"SELECT {_SCAN_COLUMNS} FROM objects WHERE bucket = ? AND key >= ?"  # noqa: S608 - constants
_SCAN_FROM_EXCLUSIVE = f"SELECT {_SCAN_COLUMNS} FROM objects WHERE bucket = ? AND key > ?"  # noqa: S608 - constants

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    cors TEXT NOT NULL DEFAULT '[]',
    public_read INTEGER NOT NULL DEFAULT 0,
    cors_vary INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    path TEXT NOT NULL,
    object_type TEXT NOT NULL DEFAULT 'Normal',
    crc64 TEXT,
    symlink_target TEXT,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated REAL NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    md5 BLOB NOT NULL,
    last_modified REAL NOT NULL,
    path TEXT NOT NULL,
    crc64 TEXT,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
"""
# Columns added after the first release: ALTER TABLE on an older index (a data dir kept across versions).
_ADDED_COLUMNS = (("buckets", "cors_vary", "INTEGER NOT NULL DEFAULT 0"), ("objects", "crc64", "TEXT"),
                  ("objects", "symlink_target", "TEXT"), ("parts", "crc64", "TEXT"))
_OBJECT_COLUMNS = ("bucket, key, size, etag, last_modified, content_type, metadata, path, object_type, crc64, "
                   "symlink_target")
_UPSERT_OBJECT = f"INSERT OR REPLACE INTO objects ({_OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608


@dataclass(frozen=True)
class ObjectRecord:
    bucket: str
    key: str
    size: int
    etag: str  # uppercase hex MD5 (or "<hex>-<N>" for multipart), without quotes
    last_modified: float
    content_type: str
    metadata: dict[str, str]  # stored response headers: x-oss-meta-*, Content-Disposition, ...
    path: str  # blob file, relative to the blob root
    object_type: str = "Normal"  # Normal | Multipart | Appendable | Symlink
    crc64: int | None = None  # CRC-64/ECMA of the content (None when unknown)
    symlink_target: str | None = None  # the key a Symlink object points to


class ListedObject(NamedTuple):
    """What a listing shows of an object (no metadata parsing on the hot path)."""

    key: str
    size: int
    etag: str
    last_modified: float
    object_type: str


@dataclass(frozen=True)
class PartRecord:
    part_number: int
    size: int
    etag: str
    md5: bytes
    last_modified: float
    path: str
    crc64: int | None = None


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    content_type: str
    metadata: dict[str, str]


@dataclass
class WrittenBlob:
    path: str
    size: int
    md5: bytes = field(repr=False)
    crc64: int = 0

    @property
    def etag(self) -> str:
        return self.md5.hex().upper()

    @property
    def content_md5(self) -> str:
        return base64.b64encode(self.md5).decode()


class Storage:
    """Thread-safe store: one SQLite connection per thread (WAL), blobs written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_root = self.root / "blobs"
        self.tmp_root = self.root / "tmp"
        self.blob_root.mkdir(parents=True, exist_ok=True)
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp_root.iterdir():  # half-written bodies from a crash: never indexed
            with contextlib.suppress(OSError):
                leftover.unlink()
        self.db_path = self.root / "index.sqlite3"
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._db().executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        conn = self._db()
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    # -- connections -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._db()
        # One writer at a time inside the process keeps BEGIN IMMEDIATE from spinning on busy.
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- blobs -------------------------------------------------------------------------------
    def blob_file(self, relative: str) -> Path:
        return self.blob_root / relative

    @contextlib.contextmanager
    def _new_blob(self, *, buffering: int = -1) -> Iterator[tuple[BinaryIO, str]]:
        """(open temp file, blob path): renamed into place when the block ends, removed if it fails."""
        blob_id = uuid.uuid4().hex
        relative = f"{blob_id[:2]}/{blob_id}"
        final = self.blob_root / relative
        final.parent.mkdir(exist_ok=True)
        tmp = self.tmp_root / f"{blob_id}.tmp"
        try:
            with open(tmp, "wb", buffering=buffering) as out:
                yield out, relative
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def write_blob(self, chunks: Iterable[bytes]) -> WrittenBlob:
        """Stream chunks into a new blob (temp file + rename) and return its size, MD5 and CRC-64."""
        digest = hashlib.md5()  # noqa: S324 - OSS ETag is MD5 by definition
        crc = 0
        size = 0
        with self._new_blob() as (out, relative), _BackgroundWriter(out, digest) as write:
            for chunk in chunks:
                write(chunk)
                crc = crc64.update(chunk, crc)
                size += len(chunk)
        return WrittenBlob(relative, size, digest.digest(), crc)

    def append_blob(self, relative: str, chunks: Iterable[bytes]) -> WrittenBlob:
        """A new blob holding the old one's bytes followed by ``chunks`` (the old one is left untouched, so
        readers streaming it are unaffected). Size is the new total; MD5 and CRC-64 cover the appended part."""
        digest = hashlib.md5()  # noqa: S324 - OSS ETag is MD5 by definition
        crc = 0
        with self._new_blob(buffering=0) as (out, new_relative):
            with open(self.blob_root / relative, "rb") as src:
                _copy_file(src, out)
            size = out.tell()
            for chunk in chunks:
                digest.update(chunk)
                crc = crc64.update(chunk, crc)
                out.write(chunk)
                size += len(chunk)
        return WrittenBlob(new_relative, size, digest.digest(), crc)

    def copy_blob(self, relative: str) -> str:
        """A new blob with the same content: a hard link (blobs are immutable), else a copy."""
        blob_id = uuid.uuid4().hex
        new_relative = f"{blob_id[:2]}/{blob_id}"
        target = self.blob_root / new_relative
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(self.blob_root / relative, target)
        except OSError:
            tmp = self.tmp_root / f"{blob_id}.tmp"
            with open(self.blob_root / relative, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
            os.replace(tmp, target)
        return new_relative

    def discard_blob(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.blob_root / relative).unlink()

    # -- buckets -----------------------------------------------------------------------------
    def create_bucket(self, name: str, *, public_read: int = 0) -> bool:
        """Create the bucket; False if it already existed."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO buckets (name, created, public_read) VALUES (?, ?, ?)",
                (name, time.time(), int(public_read)),
            )
            return cursor.rowcount == 1

    def set_public_read(self, name: str, public_read: int) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE buckets SET public_read = ? WHERE name = ?", (int(public_read), name))

    def bucket(self, name: str) -> dict[str, Any] | None:
        row = self._db().execute(
            "SELECT name, created, cors, public_read, cors_vary FROM buckets WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return {"name": row[0], "created": row[1], "cors": json.loads(row[2]), "public_read": int(row[3]),
                "cors_vary": bool(row[4])}

    def buckets(self, *, prefix: str = "", after: str = "", limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT name, created FROM buckets WHERE name > ? AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (after, len(prefix), prefix, limit)).fetchall()
        return [{"name": name, "created": created} for name, created in rows]

    def delete_bucket(self, name: str) -> bool:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM buckets WHERE name = ?", (name,)).rowcount == 1

    def bucket_is_empty(self, name: str) -> bool:
        row = self._db().execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone()
        return row is None

    def set_cors(self, name: str, rules: list[dict[str, Any]], *, response_vary: bool = False) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE buckets SET cors = ?, cors_vary = ? WHERE name = ?",
                         (json.dumps(rules), int(response_vary), name))

    # -- objects -----------------------------------------------------------------------------
    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        row = self._db().execute(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?",  # noqa: S608 - constant
            (bucket, key),
        ).fetchone()
        return _object(row) if row else None

    @overload
    def put_object(self, record: ObjectRecord, *, forbid_overwrite: Literal[False] = False) -> int: ...

    @overload
    def put_object(self, record: ObjectRecord, *, forbid_overwrite: bool) -> int | None: ...

    def put_object(self, record: ObjectRecord, *, forbid_overwrite: bool = False) -> int | None:
        """Index the object (its blob is already in place); return the size delta; drop the old blob.

        With ``forbid_overwrite`` an existing key wins and None is returned: the check and the write are
        one transaction, so of two concurrent creates exactly one succeeds (as OSS does)."""
        with self._transaction() as conn:
            old = conn.execute(
                "SELECT path, size FROM objects WHERE bucket = ? AND key = ?", (record.bucket, record.key)
            ).fetchone()
            if old and forbid_overwrite:
                return None
            conn.execute(_UPSERT_OBJECT, _object_row(record))
        if old and old[0] != record.path:
            self.discard_blob(old[0])
        return record.size - (old[1] if old else 0)

    def put_object_if(self, record: ObjectRecord, *, expected_path: str | None) -> int | None:
        """Index ``record`` only if the key still points to ``expected_path`` (None: absent); else None."""
        with self._transaction() as conn:
            old = conn.execute(
                "SELECT path, size FROM objects WHERE bucket = ? AND key = ?", (record.bucket, record.key)
            ).fetchone()
            if (old[0] if old else None) != expected_path:
                return None
            conn.execute(_UPSERT_OBJECT, _object_row(record))
        if old and old[0] != record.path:
            self.discard_blob(old[0])
        return record.size - (old[1] if old else 0)

    def delete_object(self, bucket: str, key: str) -> bool:
        with self._transaction() as conn:
            row = conn.execute("SELECT path FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
            if row:
                conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        if row:
            self.discard_blob(row[0])
        return row is not None

    def scan(self, bucket: str, after: str, lower: str, upper: str | None, limit: int) -> Iterator[ListedObject]:
        """Objects with key > after, key >= lower and key < upper, in key order (lazy: stop any time)."""
        # One lower bound only, so SQLite seeks straight to it in the primary key.
        inclusive = after < lower
        sql = _SCAN_FROM_INCLUSIVE if inclusive else _SCAN_FROM_EXCLUSIVE
        start = lower if inclusive else after
        args: list[Any] = [bucket, start]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key LIMIT ?"
        args.append(limit)
        cursor = self._db().execute(sql, args)
        try:
            for row in cursor:
                yield ListedObject._make(row)
        finally:
            cursor.close()

    def seed_objects(self, bucket: str, keys: Iterable[str], *, body: bytes = b"x",
                     content_type: str = "application/octet-stream") -> int:
        """Bulk-index many keys pointing to one shared blob (benches/tests only: deleting one of them
        removes the shared blob for all)."""
        blob = self.write_blob([body])
        now = time.time()
        meta = json.dumps({})
        rows = ((bucket, key, blob.size, blob.etag, now, content_type, meta, blob.path, "Normal", str(blob.crc64),
                 None) for key in keys)
        with self._transaction() as conn:
            cursor = conn.executemany(_UPSERT_OBJECT, rows)
            return cursor.rowcount

    # -- multipart ---------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, content_type: str, metadata: dict[str, str]) -> str:
        upload_id = uuid.uuid4().hex.upper()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO uploads (upload_id, bucket, key, initiated, content_type, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (upload_id, bucket, key, time.time(), content_type, json.dumps(metadata)),
            )
        return upload_id

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = self._db().execute(
            "SELECT upload_id, bucket, key, initiated, content_type, metadata FROM uploads WHERE upload_id = ?",
            (upload_id,),
        ).fetchone()
        if row is None:
            return None
        return UploadRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))

    def list_uploads(self, bucket: str, *, lower: str = "", upper: str | None = None, after_key: str = "",
                     after_upload_id: str | None = None, limit: int = 1000) -> list[UploadRecord]:
        """Uploads with lower <= key < upper, after (after_key, after_upload_id) in (key, upload id) order;
        without after_upload_id, after every upload of after_key."""
        sql = ("SELECT upload_id, bucket, key, initiated, content_type, metadata FROM uploads "
               "WHERE bucket = ? AND key >= ?")
        args: list[Any] = [bucket, lower]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        if after_upload_id is None:
            sql += " AND key > ?"
            args.append(after_key)
        else:
            sql += " AND (key > ? OR (key = ? AND upload_id > ?))"
            args += [after_key, after_key, after_upload_id]
        sql += " ORDER BY key, upload_id LIMIT ?"
        args.append(limit)
        rows = self._db().execute(sql, args).fetchall()
        return [UploadRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def put_part(self, upload_id: str, part_number: int, blob: WrittenBlob) -> None:
        with self._transaction() as conn:
            old = conn.execute(
                "SELECT path FROM parts WHERE upload_id = ? AND part_number = ?", (upload_id, part_number)
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO parts (upload_id, part_number, size, etag, md5, last_modified, path, crc64) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (upload_id, part_number, blob.size, blob.etag, blob.md5, time.time(), blob.path, str(blob.crc64)),
            )
        if old and old[0] != blob.path:
            self.discard_blob(old[0])

    def parts(self, upload_id: str, after: int = 0, limit: int = 10000) -> list[PartRecord]:
        rows = self._db().execute(
            "SELECT part_number, size, etag, md5, last_modified, path, crc64 FROM parts "
            "WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?",
            (upload_id, after, limit),
        ).fetchall()
        return [PartRecord(part_number, size, etag, md5, last_modified, path, _int_or_none(crc64))
                for part_number, size, etag, md5, last_modified, path, crc64 in rows]

    def finish_upload(self, upload_id: str, record: ObjectRecord | None) -> int:
        """Remove the upload and its parts; index ``record`` (when completing) in the same transaction."""
        delta = 0
        with self._transaction() as conn:
            part_paths = [r[0] for r in conn.execute("SELECT path FROM parts WHERE upload_id = ?", (upload_id,))]
            conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            old = None
            if record is not None:
                old = conn.execute(
                    "SELECT path, size FROM objects WHERE bucket = ? AND key = ?", (record.bucket, record.key)
                ).fetchone()
                conn.execute(_UPSERT_OBJECT, _object_row(record))
                delta = record.size - (old[1] if old else 0)
        for path in part_paths:
            self.discard_blob(path)
        if old and record is not None and old[0] != record.path:
            self.discard_blob(old[0])
        return delta

    def concat_blobs(self, paths: list[str]) -> str:
        """Concatenate part blobs into a new blob (temp file + rename), copying in the kernel."""
        with self._new_blob(buffering=0) as (out, relative):
            for path in paths:
                with open(self.blob_root / path, "rb") as src:
                    _copy_file(src, out)
        return relative

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _BackgroundWriter:
    """MD5-hashes and writes chunks on a helper thread once a body has more than one chunk, so that this
    work (both release the GIL) overlaps with receiving the next chunk and its CRC-64; a one-chunk body
    is handled inline. Errors from the writer surface on the next write or on exit; the queue is bounded."""

    def __init__(self, out: BinaryIO, digest: Any, depth: int = 4) -> None:
        self._out = out
        self._digest = digest
        self._depth = depth
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._written_inline = False

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __call__(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            if not self._written_inline:
                self._written_inline = True
                self._digest.update(chunk)
                self._out.write(chunk)
                return
            self._queue = queue.Queue(maxsize=self._depth)
            self._thread = threading.Thread(target=self._run, name="blob-writer", daemon=True)
            self._thread.start()
        assert self._queue is not None
        self._queue.put(chunk)

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._error is None:  # after a failure keep draining so the producer never blocks
                try:
                    self._digest.update(chunk)
                    self._out.write(chunk)
                except BaseException as error:  # handed to the producer thread
                    self._error = error

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
        if exc is None and self._error is not None:
            raise self._error


def _copy_file(src: BinaryIO, dst: BinaryIO) -> None:
    """Append all of ``src`` to the unbuffered ``dst`` (copy_file_range when the kernel allows)."""
    remaining = os.fstat(src.fileno()).st_size
    with contextlib.suppress(OSError):
        while remaining > 0:
            copied = os.copy_file_range(src.fileno(), dst.fileno(), remaining)
            if copied == 0:
                break
            remaining -= copied
    if remaining > 0:
        src.seek(os.fstat(src.fileno()).st_size - remaining)
        while chunk := src.read(CHUNK):
            dst.write(chunk)


def _int_or_none(text: str | None) -> int | None:
    return None if text is None else int(text)


def _object(row: tuple[Any, ...]) -> ObjectRecord:
    return ObjectRecord(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8],
                        _int_or_none(row[9]), row[10])


def _object_row(record: ObjectRecord) -> tuple[Any, ...]:
    return (record.bucket, record.key, record.size, record.etag, record.last_modified, record.content_type,
            json.dumps(record.metadata), record.path, record.object_type,
            None if record.crc64 is None else str(record.crc64), record.symlink_target)
