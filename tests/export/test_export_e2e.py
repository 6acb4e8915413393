"""export end to end: a seeded emulator bucket, the gateway running the handler, files checked by fetching URLs.

"Same file" is byte-identical: every URL of an export is signed at one signing time (the trigger time when the
export starts within 15 min of it) with one validity, both kept in the checkpoint, so a continued or resumed
export writes the bytes a single run writes. Two exports of the same tick (different trigger names) therefore
have identical bodies, which is what these tests compare.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import oss2
import pytest

from local.up import Stack, root_bucket, start_stack
from local.worker import build_context
from shared import config, credentials
from shared.export import Checkpoint, read_rows
from shared.export.job import ExportJob, Runtime, run_export
from shared.export.request import parse_request
from shared.export.store import CheckpointStore
from shared.storage import OssClient
from shared.webhook import verify_signature
from tests.on_upload.receiver import Receiver, webhook_receiver

BATCHES = 30
PER_BATCH = 100
TRICKY = ["data/zz, comma.txt", 'data/zz "quoted".txt', "data/zz 报告 +plus.txt", "data/zz%41percent.txt"]
PART = 102400  # the OSS minimum: many parts from a few thousand rows


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Stack]:
    started = start_stack(data_dir=Path(tmp_path_factory.mktemp("export-stack")), auth="apikey", port=0,
                          oss_port=0, sts_port=0, timers=False, echo_logs=False, seed=True,
                          env={"export": {"WEBHOOK_URL": receiver.url, "WEBHOOK_RETRIES": "1"}})
    storage = started.cloud.storage
    for batch in range(BATCHES):
        keys = [f"data/b{batch:02d}/{i:04d}.bin" for i in range(PER_BATCH)]
        storage.seed_objects("demo-bucket", keys, body=f"batch {batch}".encode())
    # a page of the whole-bucket listing that ends inside the functions' own output
    storage.seed_objects("demo-bucket", [f"_links/bulk/{i:05d}.json" for i in range(1500)], body=b"{}")
    bucket = root_bucket(started)
    for key in TRICKY:
        bucket.put_object(key, f"body of {key}".encode())
    yield started
    started.stop()


def expected_body(key: str) -> bytes:
    if key in TRICKY:
        return f"body of {key}".encode()
    return f"batch {int(key.split('/')[1][1:])}".encode()


def data_keys() -> list[str]:
    keys = [f"data/b{b:02d}/{i:04d}.bin" for b in range(BATCHES) for i in range(PER_BATCH)] + TRICKY
    return sorted(keys)


TICK = (datetime.now(timezone.utc) - timedelta(seconds=5)).replace(microsecond=0)


def timer_event(name: str, payload: dict[str, Any], tick: datetime = TICK) -> bytes:
    return json.dumps({"triggerTime": tick.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": name,
                       "payload": json.dumps(payload)}).encode()


def read_export(stack: Stack, key: str) -> bytes:
    return root_bucket(stack).get_object(key).read()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def wait_for_async(stack: Stack, export_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in list(stack.gateway.invocations):
            result = item.get("result")
            if item["ok"] and isinstance(result, dict) and result.get("export_id") == export_id \
                    and result.get("status") == "done":
                return result
        time.sleep(0.1)
    raise AssertionError(f"no finished async invocation for {export_id}: {stack.gateway.invocations[-3:]}")


# Query parameters bound to the signing session: a continuation in another instance signs with another scoped
# signer session (the template's default), so these differ while everything else about a row is the same.
SESSION_BOUND = {"x-oss-credential", "x-oss-signature", "x-oss-security-token"}


def _without_session(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.path, [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in SESSION_BOUND]


def assert_same_export(body: bytes, reference_body: bytes, sample: int = 50) -> None:
    """The same rows in the same order (keys, sizes, ETags, expiry, URL but for its session), and the URLs work."""
    rows, expected = read_rows(body, "csv"), read_rows(reference_body, "csv")
    assert [r["key"] for r in rows] == [r["key"] for r in expected]
    for row, want in zip(rows, expected, strict=True):
        assert {k: v for k, v in row.items() if k != "url"} == {k: v for k, v in want.items() if k != "url"}
        assert _without_session(row["url"]) == _without_session(want["url"]), row["key"]
    for row in random.Random(11).sample(rows, min(sample, len(rows))):
        assert fetch(row["url"]) == expected_body(row["key"]), row["key"]


def checkpoint(stack: Stack, export_id: str) -> Checkpoint:
    return Checkpoint.from_json(read_export(stack, f"_exports/.checkpoints/{export_id}.json"))


PAYLOAD = {"prefixes": ["data/"], "format": "csv", "part_size": PART, "expires": 7200}


@pytest.fixture(scope="module")
def reference(stack: Stack) -> dict[str, Any]:
    """One single-run export of data/, the file the other runs must reproduce."""
    result = stack.gateway.invoke("export", timer_event("ref", PAYLOAD))
    assert result["status"] == "done" and result["hops"] == 0, result
    return {**result, "body": read_export(stack, result["key"])}


def test_single_run_export_lists_every_key_and_every_url_fetches_its_object(
        stack: Stack, reference: dict[str, Any]) -> None:
    assert reference["key"] == f"_exports/ref/{TICK.strftime('%Y%m%dT%H%M%SZ')}.csv"
    assert reference["parts"] > 5  # streamed in parts, published by CompleteMultipartUpload
    rows = read_rows(reference["body"], "csv")
    assert [r["key"] for r in rows] == data_keys() and reference["rows"] == len(rows)
    head = {o.key: o for o in oss2.ObjectIteratorV2(root_bucket(stack), prefix="data/")}
    sample = [r for r in rows if r["key"] in TRICKY] + random.Random(7).sample(rows, 300)
    for row in sample:
        assert fetch(row["url"]) == expected_body(row["key"]), row["key"]
        assert row["etag"] == head[row["key"]].etag.strip('"') and row["size"] == head[row["key"]].size
    expires = {r["expires_at"] for r in rows}
    assert expires == {(TICK + timedelta(seconds=7200)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert fetch(reference["url"]) == reference["body"]  # the signed URL to the export itself


def test_the_export_is_announced_on_the_webhook(stack: Stack, reference: dict[str, Any], receiver: Receiver) -> None:
    notices = [r for r in receiver.requests if json.loads(r.body).get("key") == reference["key"]]
    assert len(notices) == 1
    body = json.loads(notices[0].body)
    assert body["type"] == "export.done" and body["rows"] == reference["rows"]
    assert verify_signature(stack.secrets.webhook_secret, notices[0].headers, notices[0].body)
    assert fetch(body["url"]) == reference["body"]


def test_the_same_tick_again_does_not_start_a_second_export(stack: Stack, reference: dict[str, Any]) -> None:
    etag = root_bucket(stack).head_object(reference["key"]).etag
    again = stack.gateway.invoke("export", timer_event("ref", PAYLOAD))
    assert again["status"] == "already_done" and again["key"] == reference["key"]
    assert root_bucket(stack).head_object(reference["key"]).etag == etag


def test_forced_continuation_writes_the_same_file(stack: Stack, reference: dict[str, Any]) -> None:
    # a 2 s invocation with EXPORT_MIN_REMAINING_SECONDS=30: checkpoint after the first part, continue async
    first = stack.gateway.invoke("export", timer_event("cont", PAYLOAD), timeout=2)
    assert first["status"] == "continued" and first["hop"] == 1, first
    done = wait_for_async(stack, first["export_id"])
    assert done["hops"] == 1 and done["rows"] == reference["rows"]
    assert_same_export(read_export(stack, done["key"]), reference["body"])


class InProcess:
    """The export job in this process, with the environment and credentials the gateway gives the function, and
    an OSS client the test may wrap (to crash after a part, for instance)."""

    def __init__(self, stack: Stack) -> None:
        spec = stack.template.function_by_short_name("export")
        self.context = build_context(stack.gateway._context(spec, "1-inprocess-crash", None))
        self.runtime = Runtime.from_settings(config.load("export", stack.gateway._environment(spec)))
        creds = credentials.function_credentials(self.context)
        self.client: Any = OssClient.from_settings(self.runtime.settings, lambda: creds)

    def run(self, event: bytes, *, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
        return run_export(parse_request(event, self.runtime.settings), self.context, self.runtime, self.client,
                          clock=clock)


class AfterPart:
    """An OSS client calling ``observe(n)`` once a saved checkpoint records its n-th uploaded part (the checkpoint
    is saved right after each part is stored); ``observe`` may raise to crash the export there."""

    def __init__(self, client: OssClient, observe: Callable[[int], None]) -> None:
        self.client, self.observe, self.seen = client, observe, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_object(self, key: str, data: bytes, **options: Any) -> str:
        etag = self.client.put_object(key, data, **options)
        if "/.checkpoints/" in key:
            parts = len(Checkpoint.from_json(data).parts)
            if parts > self.seen:
                self.seen = parts
                self.observe(parts)
        return etag


class Crash(RuntimeError):
    pass


def test_a_crash_resumes_from_the_checkpoint_without_missing_or_repeating_rows(
        stack: Stack, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    job = InProcess(stack)
    spec = stack.template.function_by_short_name("export")
    monkeypatch.setenv("FC_FUNCTION_NAME", spec.name)
    event = timer_event("crash", PAYLOAD)
    duplicates: list[dict[str, Any]] = []

    def after_part(number: int) -> None:
        if number == 1:  # the same tick delivered again while this run holds the lease
            duplicates.append(stack.gateway.invoke("export", event))
        if number == 3:
            raise Crash("simulated crash after part 3")

    job.client = AfterPart(job.client, after_part)
    with pytest.raises(Crash):
        job.run(event)
    assert [d["status"] for d in duplicates] == ["in_progress"]
    saved = checkpoint(stack, "crash-" + TICK.strftime("%Y%m%dT%H%M%SZ"))
    assert saved.state == "running" and len(saved.parts) == 3 and saved.lease_owner is None
    assert saved.last_key and saved.rows > 0
    # the platform's retry of the same event: resumes, reconciles with ListParts, finishes
    resumed = stack.gateway.invoke("export", event)
    assert resumed["status"] == "done" and resumed["rows"] == reference["rows"], resumed
    assert_same_export(read_export(stack, resumed["key"]), reference["body"])


def test_a_crash_after_an_uploaded_but_unrecorded_part_is_idempotent(
        stack: Stack, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Part 2 reaches OSS but the checkpoint save after it fails: the retry re-uploads part 2 over itself."""
    job = InProcess(stack)
    store_class = CheckpointStore
    original_save = store_class.save
    calls = {"parts": 0}

    def failing_save(self: Any, state: Checkpoint, *, create: bool = False) -> bool:
        if len(state.parts) == 2 and state.state == "running" and state.lease_owner:
            calls["parts"] += 1
            raise Crash("checkpoint write lost")
        return original_save(self, state, create=create)

    monkeypatch.setattr(store_class, "save", failing_save)
    event = timer_event("lost", PAYLOAD)
    with pytest.raises(Crash):
        job.run(event)
    monkeypatch.setattr(store_class, "save", original_save)
    saved = checkpoint(stack, "lost-" + TICK.strftime("%Y%m%dT%H%M%SZ"))
    assert len(saved.parts) == 1  # the checkpoint knows 1 part...
    held = root_bucket(stack).list_parts(saved.output_key, saved.upload_id).parts
    assert [p.part_number for p in held] == [1, 2]  # ...OSS holds 2
    resumed = stack.gateway.invoke("export", event)
    assert resumed["status"] == "done"
    assert_same_export(read_export(stack, resumed["key"]), reference["body"])


def test_a_killed_run_is_resumed_once_its_lease_expires(
        stack: Stack, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed without releasing its lease (timeout, OOM): duplicates wait, the lease expires, a retry resumes."""
    job = InProcess(stack)

    def kill(number: int) -> None:
        if number == 2:
            raise Crash("killed")

    job.client = AfterPart(job.client, kill)
    event = timer_event("killed", PAYLOAD)
    with pytest.raises(Crash):
        job.run(event)
    state_key = "_exports/.checkpoints/killed-" + TICK.strftime("%Y%m%dT%H%M%SZ") + ".json"
    saved = checkpoint(stack, "killed-" + TICK.strftime("%Y%m%dT%H%M%SZ"))
    soon = datetime.now(timezone.utc) + timedelta(minutes=10)
    root_bucket(stack).put_object(state_key, saved.with_lease("dead-instance", soon).to_json())
    assert stack.gateway.invoke("export", event)["status"] == "in_progress"
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    root_bucket(stack).put_object(state_key, saved.with_lease("dead-instance", past).to_json())
    resumed = stack.gateway.invoke("export", event)
    assert resumed["status"] == "done"
    assert_same_export(read_export(stack, resumed["key"]), reference["body"])


def test_whole_bucket_export_skips_the_functions_own_output(stack: Stack) -> None:
    with stack.gateway.captured_logs() as lines:
        result = stack.gateway.invoke("export", timer_event("everything", {"format": "jsonl", "part_size": PART}))
    assert result["status"] == "done", result
    progress_listed = [line["listed"] for line in lines if line.get("event") == "export.progress"][-1]
    rows = read_rows(read_export(stack, result["key"]), "jsonl")
    listed = [o.key for o in oss2.ObjectIteratorV2(root_bucket(stack))]
    expected = [k for k in listed if not k.startswith(("_links/", "_exports/"))]
    assert [r["key"] for r in rows] == expected
    assert len(expected) >= BATCHES * PER_BATCH + len(TRICKY) + 5
    # the first page ends inside the 1500 seeded link records: the rest of them is jumped over, not listed
    assert progress_listed <= len(listed) - 400
    assert fetch(rows[0]["url"]) == root_bucket(stack).get_object(rows[0]["key"]).read()


def test_filters_suffix_and_modified_since(stack: Stack) -> None:
    result = stack.gateway.invoke("export", timer_event("filtered", {"prefixes": ["data/", "exampledir/"],
                                                                      "suffixes": [".txt"], "format": "jsonl"}))
    keys = [r["key"] for r in read_rows(read_export(stack, result["key"]), "jsonl")]
    assert keys == sorted([k for k in TRICKY] + ["exampledir/a b+c.txt", "exampledir/exampleobject.txt",
                                                 "exampledir/\u62a5\u544a 2026.txt"])
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    none = stack.gateway.invoke("export", timer_event("future", {"prefixes": ["data/"], "modified_since": future}))
    assert none["rows"] == 0
    assert read_export(stack, none["key"]) == b"key,url,size,etag,last_modified,expires_at\r\n"


@pytest.mark.parametrize("payload, code", [
    ('{"format": "xml"}', "InvalidParameter"),
    ("not json", "InvalidEvent"),
    ('{"expires": 10}', "ExpiresTooShort"),
])
def test_bad_payloads_are_answered_not_raised(stack: Stack, payload: str, code: str) -> None:
    before = len(stack.gateway.invocations)
    event = json.dumps({"triggerTime": TICK.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": "bad",
                        "payload": payload}).encode()
    result = stack.gateway.invoke("export", event)
    assert result["status"] == "invalid" and result["code"] == code, result
    assert len(stack.gateway.invocations) == before  # nothing was retried or continued


def test_progress_lines_are_logged(stack: Stack) -> None:
    with stack.gateway.captured_logs() as lines:
        stack.gateway.invoke("export", timer_event("progress", {"prefixes": ["data/"], "format": "jsonl"}))
    progress = [line for line in lines if line.get("event") == "export.progress"]
    assert progress and {"listed", "rows", "rate"} <= set(progress[-1])
    assert progress[-1]["rows"] == BATCHES * PER_BATCH + len(TRICKY)
    assert all("x-oss-signature=" not in json.dumps(line) or "x-oss-signature=***" in json.dumps(line)
               for line in lines)


def test_hand_off_with_parts_spanning_several_prefixes_loses_no_rows(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 prefixes of 10 keys, parts spanning many of them: a hand-off with rows of finished prefixes still in
    memory must resume from the last uploaded row, not from the next prefix."""
    job = InProcess(stack)
    monkeypatch.setenv("FC_FUNCTION_NAME", stack.template.function_by_short_name("export").name)
    batches = 4
    payload = {"prefixes": [f"data/b{b:02d}/00{d}" for b in range(batches) for d in range(10)], "format": "csv",
               "part_size": PART}
    ticks = iter(range(10**6))

    def late_clock() -> float:  # the first reading starts the invocation, every later one is past its deadline
        return 0.0 if next(ticks) == 0 else 10_000.0

    first = job.run(timer_event("spanning", payload), clock=late_clock)
    assert first["status"] == "continued", first
    saved = checkpoint(stack, first["export_id"])
    assert len(saved.parts) == 1 and saved.prefix_index > 0  # the first part ended inside a later prefix
    done = wait_for_async(stack, first["export_id"])
    single = stack.gateway.invoke("export", timer_event("spanning-ref", payload))
    body = read_export(stack, done["key"])
    expected = [k for k in data_keys() if k not in TRICKY and int(k.split("/")[1][1:]) < batches]
    assert [r["key"] for r in read_rows(body, "csv")] == expected
    assert_same_export(body, read_export(stack, single["key"]))


def test_a_failed_export_notice_fails_the_invocation_and_is_sent_on_the_retry(
        stack: Stack, receiver: Receiver) -> None:
    from local.gateway import FunctionError

    event = timer_event("notice", {"prefixes": ["exampledir/"], "format": "jsonl"})
    receiver.statuses[:] = [500, 502]  # WEBHOOK_RETRIES=1: both attempts fail
    with pytest.raises(FunctionError, match="webhook"):
        stack.gateway.invoke("export", event)
    export = "notice-" + TICK.strftime("%Y%m%dT%H%M%SZ")
    saved = checkpoint(stack, export)
    assert saved.state == "done" and not saved.notified  # published; only the notice is missing
    again = stack.gateway.invoke("export", event)  # what the platform's retry does
    assert again["status"] == "already_done"
    assert checkpoint(stack, export).notified
    notices = [json.loads(r.body) for r in receiver.requests if json.loads(r.body).get("export_id") == export]
    assert len(notices) == 3 and fetch(notices[-1]["url"]) == read_export(stack, saved.output_key)


def test_the_checkpoint_is_created_only_once(stack: Stack) -> None:
    """Two deliveries of one tick racing to start are settled by x-oss-forbid-overwrite on the first checkpoint:
    the loser gets 409 and answers in_progress. (Concurrent PUTs are not tested: the emulator checks the header
    outside its write transaction, so it does not yet guarantee create-only under a race; OSS does.)"""
    process = InProcess(stack)
    request = parse_request(timer_event("once", PAYLOAD), process.runtime.settings)
    job = ExportJob(process.runtime, process.client, process.context, request, deadline=10**9, clock=time.monotonic,
                    timeout=900)
    state = job._new_checkpoint(datetime.now(timezone.utc))
    assert job.store.save(state, create=True) is True
    assert job.store.save(state, create=True) is False  # 409 FileAlreadyExists from the store


def test_the_next_tick_resumes_an_export_that_died_unfinished(stack: Stack, reference: dict[str, Any]) -> None:
    """Killed at its timeout and the platform's retries spent: the next tick of the same trigger picks it up."""
    job = InProcess(stack)

    def kill(number: int) -> None:
        if number == 2:
            raise Crash("killed")

    job.client = AfterPart(job.client, kill)
    with pytest.raises(Crash):
        job.run(timer_event("sweep", PAYLOAD))
    dead = "sweep-" + TICK.strftime("%Y%m%dT%H%M%SZ")
    saved = checkpoint(stack, dead)
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    root_bucket(stack).put_object(f"_exports/.checkpoints/{dead}.json", saved.with_lease("dead", past).to_json())
    next_tick = TICK + timedelta(hours=1)
    fresh = stack.gateway.invoke("export", timer_event("sweep", {"prefixes": ["exampledir/"]}, tick=next_tick))
    assert fresh["status"] == "done"
    resumed = wait_for_async(stack, dead)
    assert_same_export(read_export(stack, resumed["key"]), reference["body"])
