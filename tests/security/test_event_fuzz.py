"""Fuzz: 100,000 generated events across the five handlers, in process (issue 10).

A seeded generator mutates each handler's valid event (fields replaced by nasty values: other scripts' digits,
lone surrogates, times that overflow, wrong JSON types, huge numbers, control characters, deep nesting; fields
deleted; whole events replaced by garbage). Upstreams are in-memory fakes (OSS, STS) so every path after
parsing runs; a configured share of STS calls fails, the only 5xx an HTTP handler may answer.

Judged:
- HTTP handlers (token, sign, download): no exception escapes; no 5xx except the configured STS failures;
  every error body is JSON ``{code, message, requestId}``, encodable as UTF-8; no header value with CR/LF.
- Event handlers (on_upload, export): they return a summary or raise an application error for a transient
  failure only (a 5xx ``AppError``); a record that can never succeed is skipped, never raised for (the
  platform would retry it forever). The fake OSS never fails for on_upload, so on_upload never raises.

The counts are printed; ``FUZZ_EVENTS`` sets the total (default 100,000).
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared import credentials, http, sts
from shared import logging as log
from shared.errors import AppError
from shared.events import event_handler
from shared.keys import validate_key
from shared.signing import Credentials
from shared.storage import ListPage, ObjectInfo, ObjectResponse, OssError
from tests.security.sweep import SecretSweep
from tests.sign.helpers import API_KEY, BASE_URL, LINK_SECRET, base_env, event, replace_environment

ROOT = Path(__file__).resolve().parents[2]
TOTAL = int(os.environ.get("FUZZ_EVENTS", "100000"))
SEED = 20261201
STS_FAILURE_SHARE = 0.05
FUNCTION_SECRET = "fuzz-function-secret-0123456789"
VENDED_SECRET = "fuzz-vended-secret-0123456789abcd"
VENDED_TOKEN = "CAISfuzz-vended-token-0123456789abcdef"
WEBHOOK_SECRET = "fuzz-webhook-secret-0123456789"

NASTY: list[Any] = [
    "", " ", "²", "٣٠٠", "９００", "900²", "1_000", "+1", "-1", "0", "1e3", "0x10", "NaN", "Infinity",
    "\ud800", "a\udfffb", "exampledir/\udc80", "\x00", "a\r\nX-Injected: 1", "\u202e", "\ufeff", "%ED%A0%80",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z", "2026-02-30T00:00:00Z",
    "2026-11-29T10:00:00Z", "2026-11-29T10:00:00+14:00", "exampledir/../x", "/exampledir/a", "exampledir/a?acl",
    "a.txt?aaa&acl&b", "_links/x", "_exports/.checkpoints/x.json", "x" * 2000, "exampledir/" + "y" * 1100,
    "image/watermark,image_ZXhhbXBsZWRpci9h", "acs:ram::1:role/x", "eyJhbGciOiJub25lIn0.e30.", "Bearer x",
    0, 1, -1, 900, 2**63, 10**400, 1.5, -0.0, True, False, None, [], {}, [None], {"a": "\ud800"},
    [[[[[[[[[[[[]]]]]]]]]]]], {"": ""}, ["exampledir/a", "\ud800"],
]


def nasty(rng: random.Random) -> Any:
    if rng.random() < 0.1:  # an arbitrary short unicode string, surrogates included
        return "".join(chr(rng.randrange(0x20, 0xE000)) for _ in range(rng.randrange(0, 8)))
    return copy.deepcopy(rng.choice(NASTY))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


class Template:
    """A valid event, kept as JSON text (a fresh copy is one json.loads) with the paths of its fields."""

    def __init__(self, valid: Any) -> None:
        self.text = json.dumps(valid)
        self.paths = list(_paths(valid))

    def fresh(self) -> Any:
        return json.loads(self.text)


def mutate(template: Template, rng: random.Random) -> Any:
    """1-3 random edits of a fresh copy: replace a value, delete a field, add a field, or re-encode a field."""
    if rng.random() < 0.03:
        return rng.choice([rng.randbytes(rng.randrange(0, 64)), "".join(map(chr, rng.randbytes(20))), nasty(rng),
                           "[" * 5000, b"\xff\xfe{}", json.dumps(nasty(rng))])
    value = template.fresh()
    for _ in range(rng.randrange(1, 4)):
        path = rng.choice(template.paths)
        try:  # an earlier edit may have removed or replaced part of this path
            parent = value
            for step in path[:-1]:
                parent = parent[step]
            current = parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):  # a string that replaced the container: indexable, not editable
            continue
        last = path[-1]
        roll = rng.random()
        if roll < 0.65:
            parent[last] = nasty(rng)
        elif roll < 0.8 and isinstance(parent, dict):
            del parent[last]
        elif roll < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["extra", "x-oss-process", "duration", "keys", "continuation", "events"])] = nasty(rng)
        elif isinstance(current, (dict, list)):  # JSON inside a string, as payloads and bodies are
            parent[last] = json.dumps(current)
        else:
            parent[last] = nasty(rng)
    return value


# --- fakes -----------------------------------------------------------------------------------------------


class FakeOss:
    """The OssClient calls the event handlers make, in memory; keys are validated as the real client does."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.modified = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)

    def _info(self, key: str) -> ObjectInfo:
        validate_key(key)
        if key not in self.objects:
            raise OssError(404, "NoSuchKey", "The specified key does not exist.")
        import hashlib

        etag = hashlib.md5(self.objects[key]).hexdigest().upper()  # an ETag, as OSS computes it
        return ObjectInfo(key=key, size=len(self.objects[key]), etag=etag, last_modified=self.modified,
                          content_type="text/plain")

    def head_object(self, key: str, **_: Any) -> ObjectInfo:
        return self._info(key)

    def get_object(self, key: str, **kwargs: Any) -> ObjectResponse:
        self._info(key)
        return ObjectResponse(200, {}, self.objects[key])

    def put_object(self, key: str, body: bytes, *, content_type: str | None = None,
                   headers: dict[str, str] | None = None) -> str:
        validate_key(key)
        if (headers or {}).get("x-oss-forbid-overwrite") == "true" and key in self.objects:
            raise OssError(409, "FileAlreadyExists", "The object you specified already exists.")
        self.objects[key] = bytes(body)
        return self._info(key).etag

    def delete_object(self, key: str) -> None:
        validate_key(key)
        self.objects.pop(key, None)

    def list_objects_v2(self, prefix: str = "", *, continuation_token: str | None = None,
                        start_after: str | None = None, max_keys: int = 1000, delimiter: str | None = None) -> ListPage:
        keys = sorted(k for k in self.objects if k.startswith(prefix) and (not start_after or k > start_after))
        return ListPage([self._info(k) for k in keys[:max_keys]], [], None, False)

    def iter_objects(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        yield from self.list_objects_v2(prefix, start_after=start_after).objects

    def __getattr__(self, name: str) -> Callable[..., Any]:  # multipart and the rest: a transient failure
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise OssError(503, "ServiceUnavailable", "fake OSS: not served in the fuzz")

        return unavailable


class FakeSts:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.calls = 0
        self.failures = 0

    def assume_role(self, role_arn: str, session_name: str, duration_seconds: int,
                    policy: str | None = None) -> sts.AssumedRole:
        self.calls += 1
        if self.rng.random() < STS_FAILURE_SHARE:
            self.failures += 1
            raise sts._final_error(sts._Retryable(self.rng.choice(["throttled", "network", "server"]), {}))
        expiration = datetime.now(timezone.utc) + timedelta(seconds=duration_seconds)
        creds = Credentials(f"STS.fuzz{self.calls}", VENDED_SECRET, VENDED_TOKEN, expiration=expiration)
        return sts.AssumedRole(creds, f"{role_arn}/{session_name}", f"req-{self.calls}")


def _context() -> Any:
    expiration = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    creds = SimpleNamespace(access_key_id="LTAI5tFuzzFunctionKey", access_key_secret=FUNCTION_SECRET,
                            security_token=None, expiration=expiration)
    return SimpleNamespace(request_id="req-fuzz", credentials=creds, account_id="1234567890123456",
                           region="cn-hangzhou", function=SimpleNamespace(name="fuzz", timeout=900))


# --- the run ----------------------------------------------------------------------------------------------


def _valid_events() -> dict[str, list[Template]]:
    upload = json.loads((ROOT / "events" / "on_upload.json").read_bytes())
    upload_record = upload["events"][0]
    upload_record["oss"]["bucket"]["name"] = "demo-bucket"
    upload_record["oss"]["object"].update(key="exampledir/a.txt", eTag="", size=5)
    link_exp = 4102444800
    from shared import links

    link = links.make_link(BASE_URL, "exampledir/a.txt", secret=LINK_SECRET, expires_at=link_exp,
                           options={"filename": "r.txt"})
    link_query = dict(pair.split("=", 1) for pair in link.split("?", 1)[1].split("&"))
    return {
        "token": [event("POST", "/sts", body={"actions": ["read"], "duration": 900, "prefix": "in"}),
                  event("GET", "/sts", query={"duration": "900", "actions": "read,list"})],
        "sign": [event("GET", "/sign", query={"key": "exampledir/a.txt", "expires": "600", "filename": "r.txt"}),
                 event("POST", "/sign", body={"keys": ["exampledir/a.txt", {"key": "exampledir/b", "method": "HEAD"}],
                                              "expires": 600, "version": "v1"}),
                 event("GET", "/sign", query={"key": "exampledir/a.txt", "proxy": "true", "disposition": "inline"})],
        "download": [event("GET", "/download/exampledir/a.txt", query={"disposition": "attachment"}),
                     event("GET", "/download/exampledir/a.txt", query=link_query, api_key=None)],
        "on_upload": [upload, {"events": [upload_record,
                                          {**upload_record, "eventName": "ObjectRemoved:DeleteObject"}]}],
        "export": [json.loads((ROOT / "events" / "export.json").read_bytes()),
                   {"triggerName": "nightly", "triggerTime": "2026-11-29T18:00:00Z",
                    "payload": {"prefixes": ["exampledir/"], "format": "jsonl",
                                "modified_since": "2026-01-01T00:00:00Z"}},
                   {"continuation": {"export_id": "nightly-20261129T180000Z", "hop": 2}}],
    }


def _check_http(response: Any, sts_failed: bool) -> str:
    assert isinstance(response, dict), type(response)
    status = response["statusCode"]
    for name, value in response["headers"].items():
        assert isinstance(value, str) and "\r" not in value and "\n" not in value, (name, value)
    response["body"].encode("utf-8")
    if status >= 400 and response["body"]:
        body = json.loads(response["body"])
        assert set(body) == {"code", "message", "requestId"}, body
    if status >= 500:
        assert sts_failed and json.loads(response["body"])["code"] in {"UpstreamError", "ServiceUnavailable"}, response
    return str(status)


@pytest.fixture
def fuzz_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.StringIO, FakeSts]]:
    env = base_env(STS_ROLE_ARN="acs:ram::1234567890123456:role/vended", STS_ALLOW_WRITE="true",
                   SIGN_ALLOW_PUT="true", URL_SYMLINK_CHECK="false", LOG_LEVEL="info", WEBHOOK_SECRET=WEBHOOK_SECRET,
                   UPLOAD_PREFIXES="exampledir/", EXPORT_PREFIXES="exampledir/", STS_CACHE_SECONDS="0")
    replace_environment(monkeypatch, env)
    fake_sts = FakeSts(random.Random(SEED + 1))
    monkeypatch.setattr(sts, "client_for", lambda settings, caller: fake_sts)
    stream = io.StringIO()
    log.configure("info", stream=stream)
    monkeypatch.setattr(log, "configure", lambda *a, **k: None)  # the event handlers' first call keeps our stream
    yield stream, fake_sts
    monkeypatch.undo()
    log.configure("warning")
    http.reset_settings()
    credentials.reset()
    sts.reset()


def test_hundred_thousand_generated_events_never_escape(fuzz_env: tuple[io.StringIO, FakeSts],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.download.handler import handler as download
    from functions.export import handler as export_module
    from functions.on_upload import handler as upload_module
    from functions.sign.handler import handler as sign
    from functions.token.handler import handler as token

    stream, fake_sts = fuzz_env
    objects = {"exampledir/a.txt": b"hello", "exampledir/b": b"bee"}
    monkeypatch.setattr(upload_module.OssClient, "from_settings", classmethod(lambda cls, s, c: FakeOss(objects)))
    monkeypatch.setattr(export_module.OssClient, "from_settings", classmethod(lambda cls, s, c: FakeOss(objects)))
    on_upload = event_handler("on_upload", upload_module.Runtime.from_settings)(upload_module.process)
    export = event_handler("export", export_module.Runtime.from_settings)(export_module.run)
    handlers: dict[str, Callable[[Any, Any], Any]] = {"token": token, "sign": sign, "download": download,
                                                      "on_upload": on_upload, "export": export}
    valid = {name: [Template(event) for event in events] for name, events in _valid_events().items()}
    rng = random.Random(SEED)
    outcomes: dict[str, Counter[str]] = {name: Counter() for name in handlers}
    escaped: list[tuple[str, str, Any]] = []
    sweep = SecretSweep()
    names = list(handlers)
    started = time.perf_counter()
    for number in range(TOTAL):
        name = names[number % len(names)]
        template = rng.choice(valid[name])
        sent = mutate(template, rng) if number % 10 else template.fresh()
        raw = sent if isinstance(sent, (bytes, str)) or rng.random() < 0.5 else json.dumps(sent).encode()
        failures_before = fake_sts.failures
        try:
            result = handlers[name](raw, _context())
        except AppError as error:
            if name in ("on_upload",) or error.status < 500:
                escaped.append((name, f"{type(error).__name__}: {error.message[:200]}", sent))
            outcomes[name][f"raised {error.code}"] += 1
            continue
        except Exception as error:  # what the fuzz is looking for
            escaped.append((name, f"{type(error).__name__}: {str(error)[:200]}", sent))
            outcomes[name][f"unhandled {type(error).__name__}"] += 1
            continue
        if name in ("token", "sign", "download"):
            try:
                outcomes[name][_check_http(result, fake_sts.failures > failures_before)] += 1
            except AssertionError as failure:
                escaped.append((name, f"bad answer: {str(failure)[:300]}", sent))
            if result.get("statusCode") in (200, 302):  # what was handed out, for the log sweep below
                sweep.add_body(result.get("body") or "")
                sweep.add_url(result.get("headers", {}).get("Location", ""))
        else:
            json.dumps(result)
            outcomes[name][str(result.get("status", "ok")) if isinstance(result, dict) else "?"] += 1
    elapsed = time.perf_counter() - started
    print(f"\nfuzzed {TOTAL} events in {elapsed:.1f} s (seed {SEED}); STS calls {fake_sts.calls}, "
          f"configured STS failures {fake_sts.failures}")
    for name, counts in outcomes.items():
        print(f"  {name:10} {dict(counts.most_common())}")
    print(f"  escaped: {len(escaped)}")
    assert not escaped, escaped[:5]
    assert all(sum(counts.values()) >= TOTAL // len(names) for counts in outcomes.values())
    assert fake_sts.calls > 0 and outcomes["sign"]["200"] > 0 and outcomes["download"]["302"] > 0
    assert outcomes["on_upload"]["ok"] > 0 and outcomes["export"]["done"] + outcomes["export"]["already_done"] > 0
    # log sweep: no secret of the run (configured, vended, or a signature handed out) reached a log line
    configured = (FUNCTION_SECRET, VENDED_SECRET, VENDED_TOKEN, WEBHOOK_SECRET, LINK_SECRET, API_KEY)
    sweep.add(*configured)
    lines = stream.getvalue().splitlines()
    hits = sweep.found_in(lines, sample=300, always=configured)
    print(f"  log sweep: {len(lines)} lines, {len(sweep.secrets)} secrets handed out or configured "
          f"({min(len(sweep.secrets), 300 + len(configured))} searched), {len(hits)} found")
    assert len(sweep.secrets) > 50 and not hits, hits[:5]
