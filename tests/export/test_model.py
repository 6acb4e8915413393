"""Pure export logic: options, prefixes, rows (CSV / JSON lines), part buffering, checkpoint, leases."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared import config
from shared.errors import InvalidParameter
from shared.export.checkpoint import Checkpoint
from shared.export.model import (
    FORMULA_START,
    ExportOptions,
    PartBuffer,
    Row,
    checkpoint_key,
    export_id,
    format_lines,
    format_rows,
    format_time,
    normalise_prefixes,
    output_key,
    parse_options,
    read_rows,
    safe_name,
    signing_time,
)

ENV = {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "EXPORT_PREFIXES": "data/",
       "EXPORT_EXPIRES": "7200"}
T0 = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)


def settings(**extra: str) -> config.Settings:
    return config.load("export", {**ENV, **extra})


def options(payload: dict[str, Any] | None = None, **extra: str) -> ExportOptions:
    return parse_options(payload or {}, settings(**extra), trigger_name="nightly")


# --- options --------------------------------------------------------------------------------------------


def test_defaults_come_from_the_environment() -> None:
    opts = options()
    assert opts.prefixes == ("data/",) and opts.expires == 7200 and opts.format == "csv"
    assert opts.version == "v4" and opts.domain == "default" and opts.scheme == ""
    assert opts.output_prefix == "nightly/" and opts.part_size == 8 * 1024 * 1024 and opts.notify


def test_payload_overrides() -> None:
    opts = options({"prefixes": ["b/", "a/"], "suffixes": [".jpg"], "modified_since": "2026-01-01T00:00:00Z",
                    "expires": 600, "https": False, "version": "v1", "format": "jsonl", "output_prefix": "daily",
                    "part_size": 102400, "notify": False})
    assert opts.prefixes == ("a/", "b/") and opts.suffixes == (".jpg",)
    assert opts.modified_since == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert (opts.expires, opts.scheme, opts.version, opts.format) == (600, "http", "v1", "jsonl")
    assert opts.output_prefix == "daily/" and opts.part_size == 102400 and not opts.notify
    assert ExportOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts


@pytest.mark.parametrize("payload, field", [
    ({"expires": 0}, "expires"), ({"expires": 604801}, "expires"), ({"expires": "60"}, "expires"),
    ({"format": "xml"}, "format"), ({"domain": "elsewhere"}, "domain"), ({"domain": "custom"}, "custom"),
    ({"version": "v2"}, "version"), ({"scheme": "ftp"}, "scheme"), ({"https": "yes"}, "https"),
    ({"modified_since": "last week"}, "modified_since"), ({"prefixes": "a/,b/"}, None),
    ({"prefixes": [1]}, "prefixes"), ({"prefixes": ["/abs/"]}, "prefixes"),
    ({"output_prefix": "../x/"}, "output_prefix"), ({"output_prefix": ".checkpoints/"}, "output_prefix"),
    ({"part_size": 1024}, "part_size"), ({"colour": "blue"}, "unknown"), ({"notify": "no"}, "notify"),
])
def test_bad_payloads_name_the_field(payload: dict[str, Any], field: str | None) -> None:
    if field is None:  # a single string is accepted as a one-item list
        assert options(payload).prefixes == ("a/,b/",)
        return
    with pytest.raises(InvalidParameter, match=field):
        options(payload)


def test_custom_domain_needs_configuration() -> None:
    opts = options({"domain": "custom"}, OSS_CUSTOM_DOMAIN="files.example.com")
    assert opts.domain == "custom"


def test_prefixes_are_deoverlapped_and_sorted() -> None:
    assert normalise_prefixes(["b/", "a/b/", "a/", "a/c/", "ab/"]) == ("a/", "ab/", "b/")
    assert normalise_prefixes([]) == ("",)
    assert normalise_prefixes(["x/", ""]) == ("",)


def test_ids_and_keys() -> None:
    assert export_id("nightly", T0) == "nightly-20261129T020000Z"
    odd = export_id("my timer/ü", T0)
    assert odd.startswith("my-timer-") and odd.endswith("-20261129T020000Z") and "/" not in odd
    assert export_id("my timer/ü", T0) != export_id("my timer/u", T0)
    assert safe_name("ok_name-1.2") == "ok_name-1.2"
    assert checkpoint_key("_exports/", "nightly-x") == "_exports/.checkpoints/nightly-x.json"
    assert output_key("_exports/", options(), T0) == "_exports/nightly/20261129T020000Z.csv"


def test_signing_time_is_the_trigger_time_when_close_else_now() -> None:
    now = T0 + timedelta(seconds=42, microseconds=5)
    assert signing_time(T0, now) == T0
    late = T0 + timedelta(hours=3)
    assert signing_time(T0, late) == late.replace(microsecond=0)


# --- rows -----------------------------------------------------------------------------------------------


TRICKY_KEYS = ['plain.txt', 'with,comma.txt', 'with "quotes".txt', 'new\nline.txt', 'cr\rreturn', 'ünï 报告 +.txt',
               " leading space", "semi;colon"]


def rows_for(keys: list[str]) -> list[Row]:
    return [Row(key, f"http://h/b/{i}?x-oss-signature=ab", i, f"E{i}", "2026-01-01T00:00:00Z",
                "2026-01-02T00:00:00Z") for i, key in enumerate(keys)]


def test_csv_quoting_round_trips_through_an_independent_reader() -> None:
    data = format_rows(rows_for(TRICKY_KEYS), "csv", with_header=True)
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert parsed[0] == ["key", "url", "size", "etag", "last_modified", "expires_at"]
    assert [row[0].removeprefix("'") if row[0].startswith("'=") else row[0] for row in parsed[1:]] == TRICKY_KEYS
    assert b'"with,comma.txt"' in data and b'"with ""quotes"".txt"' in data and b'"new\nline.txt"' in data
    assert b"plain.txt," in data  # minimal quoting
    assert data.endswith(b"\r\n")
    assert [r["key"] for r in read_rows(data, "csv")] == TRICKY_KEYS


@pytest.mark.parametrize("text", [*TRICKY_KEYS, '"', '""', ",", "\r\n", "a\rb", "tab\there", "'single'", "x" * 2000])
def test_fast_csv_lines_agree_with_the_csv_module(text: str) -> None:
    row = (text, "http://h/b/k%2C?x-oss-signature=ab%2C", 3, text, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    out = io.StringIO()
    guarded = "'" + text if text.startswith((*FORMULA_START, "'")) else text  # the key column's formula guard
    csv.writer(out, lineterminator="\r\n").writerow((guarded, *row[1:]))
    assert format_lines([row], "csv") == [out.getvalue()]


@pytest.mark.parametrize("key", ["=HYPERLINK(\"http://evil\")", "+1", "-2", "@SUM(A1)", "\tx", "'=x", "'plain",
                                 "''", "a=b", "plain"])
def test_csv_keys_never_start_a_spreadsheet_formula_and_read_back_exactly(key: str) -> None:
    data = format_rows(rows_for([key]), "csv", with_header=True)
    cell = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[1][0]
    assert not cell.startswith(FORMULA_START)
    assert [r["key"] for r in read_rows(data, "csv")] == [key]
    assert [r["key"] for r in read_rows(format_rows(rows_for([key]), "jsonl"), "jsonl")] == [key]


def test_format_time() -> None:
    moment = datetime(2026, 11, 29, 9, 36, 46, 987000, tzinfo=timezone(timedelta(hours=8)))
    assert format_time(moment) == "2026-11-29T01:36:46Z"


def test_json_lines_one_object_per_line() -> None:
    data = format_rows(rows_for(TRICKY_KEYS), "jsonl")
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(TRICKY_KEYS) + 1
    first = json.loads(lines[5])
    assert first == {"key": "ünï 报告 +.txt", "url": "http://h/b/5?x-oss-signature=ab", "size": 5, "etag": "E5",
                     "last_modified": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z"}
    assert "报告".encode() in data  # UTF-8, not \\u escapes
    assert [r["key"] for r in read_rows(data, "jsonl")] == TRICKY_KEYS


def test_part_buffer_cuts_at_row_boundaries() -> None:
    buffer = PartBuffer(100)
    buffer.add(b"header\r\n", 0, None)
    assert not buffer.full and buffer.rows == 0 and buffer.last_key is None
    buffer.add(b"x" * 60, 3, "k3")
    buffer.add(b"y" * 40, 2, "k5")
    assert buffer.full and buffer.rows == 5 and buffer.last_key == "k5"
    data, rows, last = buffer.take()
    assert data == b"header\r\n" + b"x" * 60 + b"y" * 40 and rows == 5 and last == "k5"
    assert buffer.empty and buffer.rows == 0 and buffer.last_key is None


# --- checkpoint -----------------------------------------------------------------------------------------


def make_checkpoint() -> Checkpoint:
    return Checkpoint(export_id="nightly-20261129T020000Z", trigger_name="nightly", trigger_time="2026-11-29T02:00:00Z",
                      output_key="_exports/nightly/20261129T020000Z.csv", options=options().to_dict(),
                      signed_at="2026-11-29T02:00:00Z", expires_in=7200, upload_id="U1",
                      parts=[[1, "E1", 102400], [2, "E2", 204800]], prefix_index=0, last_key="data/报告 ,\"x\".txt",
                      rows=1234, listed=2000, hops=2, started_at="2026-11-29T02:00:01Z")


def test_checkpoint_round_trip() -> None:
    checkpoint = make_checkpoint()
    again = Checkpoint.from_json(checkpoint.to_json())
    assert again == checkpoint
    assert again.export_options == options()
    assert again.signed_at_time == T0
    assert again.uploaded_bytes == 102400 + 204800
    assert Checkpoint.from_json(make_checkpoint().to_json().replace(b'"parts"', b'"_p"')).uploaded_bytes == 0


def test_checkpoint_rejects_other_documents() -> None:
    with pytest.raises(ValueError):
        Checkpoint.from_json(b'{"version": 2}')
    with pytest.raises(ValueError):
        Checkpoint.from_json(b"[]")


def test_lease_rules() -> None:
    now = T0
    free = make_checkpoint()
    assert not free.lease_held_by_other(None, now)
    held = free.with_lease("req-1", now + timedelta(minutes=5))
    assert held.lease_held_by_other(None, now)  # a duplicate timer event must not start
    assert held.lease_held_by_other("hop-3", now)
    assert not held.lease_held_by_other(None, now + timedelta(minutes=6))  # expired: may resume
    handed = free.with_lease("hop-3", now + timedelta(minutes=15))
    assert not handed.lease_held_by_other("hop-3", now)  # the continuation we handed off to
    assert handed.lease_held_by_other(None, now)
    assert handed.lease_held_by_other("hop-2", now)


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_signed_urls_never_need_csv_quoting(version: str) -> None:
    from shared.signing import Credentials, Endpoint, Signer

    creds = Credentials("STS.id", "secret-secret", 'token+/=,"x', datetime(2030, 1, 1, tzinfo=timezone.utc))
    keys = [k for k in TRICKY_KEYS if "\n" not in k and "\r" not in k] + ['a,b"c\'d;e f+g%h#i?j&k=l', "./..", "报,告"]
    for endpoint in (Endpoint("127.0.0.1:9000", "http", "path"), Endpoint("oss-cn-hangzhou.aliyuncs.com"),
                     Endpoint.custom_domain("files.example.com")):
        signer = Signer(creds, endpoint, "demo-bucket", region="cn-hangzhou", version=version)  # type: ignore[arg-type]
        for presigned in signer.presign_many(keys, expires=600, now=T0):
            assert not any(ch in presigned.url for ch in ',"\r\n'), presigned.url


def test_url_signer_endpoints_and_bounds() -> None:
    from shared.export.model import url_signer
    from shared.signing import Credentials

    creds = Credentials("AK", "secret-secret", None, datetime(2030, 1, 1, tzinfo=timezone.utc))
    env = {"OSS_CUSTOM_DOMAIN": "files.example.com", "URL_MAX_EXPIRES": "3600"}
    s = settings(**env)
    default = url_signer(s, creds).presign("a b.txt", expires=7200, now=T0)
    assert default.url.startswith("https://demo-bucket.oss-cn-hangzhou.aliyuncs.com/a%20b.txt?")
    assert default.expires_in == 3600 and default.clamp_reason == "configured_max"
    assert url_signer(s, creds, domain="custom").presign("k", expires=60, now=T0).url.startswith(
        "https://files.example.com/k?")
    assert url_signer(s, creds, domain="accelerate", scheme="http").presign("k", expires=60, now=T0).url.startswith(
        "http://demo-bucket.oss-accelerate.aliyuncs.com/k?")
    local = url_signer(settings(OSS_ENDPOINT="http://127.0.0.1:9000"), creds, version="v1")
    assert local.presign("k", expires=60, now=T0).url.startswith("http://127.0.0.1:9000/demo-bucket/k?OSSAccessKeyId=AK")
    with pytest.raises(InvalidParameter, match="OSS_CUSTOM_DOMAIN"):
        url_signer(settings(), creds, domain="custom")
