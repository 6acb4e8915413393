"""The built archives run as FC runs them: each function's zip unpacked as its code root, layer.zip's python/ after
it, under CPython 3.10 with -I -S (the standard library, the code package and the layer, nothing else), behind the
local cloud. This is `python -m local up --archives <dist> --python <python3.10>`."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from local.gateway import canonical_header_name
from local.up import Stack, caller_headers, root_bucket, start_stack, with_demo_caller

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
HELLO = b"Hello from exampledir/exampleobject.txt.\n"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method=method, headers=headers or {}, data=data),
                         timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def fetch(url: str) -> bytes:
    status, _, body = request(url)
    assert status == 200, (status, body[:300])
    return body


def archive_stack(data_dir: Path, archives: Path, python: str, **parameters: str) -> Stack:
    # FC's python3.10 context carries no credential expiration: as in the cloud
    return start_stack(data_dir=data_dir, auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                       echo_logs=False, archives=archives, python=python, pass_credentials_expiration=False,
                       parameters=parameters or None)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, built_archives: Path, runtime_python: str) -> Iterator[Stack]:
    started = archive_stack(tmp_path_factory.mktemp("archive-stack"), built_archives, runtime_python)
    # enough rows that a 2-second export must hand off to its asynchronous continuation
    started.cloud.storage.seed_objects("demo-bucket", [f"data/{i:05d}.bin" for i in range(3000)], body=b"row")
    yield started
    started.stop()


def invoke(stack: Stack, function: str, event: bytes, **kwargs: Any) -> Any:
    return stack.gateway.invoke(function, with_demo_caller(event, caller_headers(stack)), **kwargs)


def test_the_functions_run_under_isolated_python310_from_the_unpacked_archives(stack, runtime_python):
    invoke(stack, "token", (ROOT / "events" / "token.json").read_bytes())
    worker = stack.gateway.pools[stack.template.function_by_short_name("token").name].all[0]
    command = worker.process.args
    assert os.path.realpath(f"/proc/{worker.process.pid}/exe") == os.path.realpath(runtime_python)
    assert command[:4] == [runtime_python, "-I", "-S", "-B"]
    code = Path(command[command.index("--code") + 1])
    layer = Path(command[command.index("--layer") + 1])
    assert sorted(p.name for p in code.iterdir()) == ["__pycache__", "handler.py"]  # token.zip, nothing else
    assert layer.name == "python" and (layer / "async_timeout").is_dir() and (layer / "shared").is_dir()
    assert ROOT not in (code.parents, layer.parents)


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.stem)
def test_every_sample_event(stack, package_sources, path):
    function = "sign" if path.stem == "sign_batch" else path.stem
    result = invoke(stack, function, path.read_bytes())
    if path.stem == "token":
        assert result["statusCode"] == 200, result
        credentials = json.loads(result["body"])
        assert credentials["AccessKeyId"].startswith("STS.") and credentials["SecurityToken"]
    elif path.stem == "sign":
        assert result["statusCode"] == 200, result
        assert fetch(json.loads(result["body"])["url"]) == HELLO
    elif path.stem == "sign_batch":
        assert result["statusCode"] == 200, result
        answer = json.loads(result["body"])
        items = answer["results"]
        assert [i["key"] for i in items] == ["exampledir/exampleobject.txt", "exampledir/a b+c.txt",
                                             "exampledir/report.pdf"]
        assert answer["count"] == 3 and answer["failed"] == 0, answer
        assert fetch(items[1]["url"]) == b"A key with a space and a plus sign.\n"
    elif path.stem == "download":
        assert result["statusCode"] == 302, result
        assert fetch(result["headers"]["Location"]) == HELLO
    elif path.stem == "on_upload":
        assert result["failed"] == [] and len(result["links"]) == 1, result
        record = json.loads(root_bucket(stack).get_object("_links/incoming/hello world+1.txt.json").read())
        assert fetch(record["url"]) == b"hello world"
    elif path.stem == "export":
        assert result["status"] == "done" and result["rows"] == 3, result
        rows = fetch(result["url"]).decode().splitlines()[1:]
        assert sorted(row.split(",", 1)[0] for row in rows) == sorted(
            ["exampledir/exampleobject.txt", "exampledir/a b+c.txt", "exampledir/\u62a5\u544a 2026.txt"])
    elif path.stem == "portal":
        assert result["statusCode"] == 200, result
        body = base64.b64decode(result["body"]) if result.get("isBase64Encoded") else result["body"].encode()
        # the page comes from the archive (the built folder's static/), not from the repository
        assert body == (package_sources / "functions" / "portal" / "static" / "index.html").read_bytes()
        assert result["headers"]["Content-Type"].startswith("text/html")
    else:
        pytest.fail(f"no expectation for events/{path.name}")


def test_http_triggers_with_the_header_case_fc_delivers(stack):
    """Through the gateway's HTTP port (headers arrive as FC's front end spells them: X-Api-Key), and as events
    whose header names are in that canonical case."""
    headers = caller_headers(stack)
    status, _, body = request(f"{stack.gateway.url}/sts", method="POST", headers={
        **{k.lower(): v for k, v in headers.items()}, "content-type": "application/json"}, data=b'{"duration": 900}')
    assert status == 200, body
    status, _, body = request(f"{stack.gateway.url}/sign?key={quote('exampledir/a b+c.txt')}", headers=headers)
    assert status == 200 and fetch(json.loads(body)["url"]) == b"A key with a space and a plus sign.\n"
    status, response_headers, _ = request(f"{stack.gateway.url}/download/exampledir/exampleobject.txt",
                                          headers=headers)
    assert status == 302 and fetch(response_headers["Location"]) == HELLO
    for name in ("token", "sign", "download"):
        event = json.loads(with_demo_caller((ROOT / "events" / f"{name}.json").read_bytes(), caller_headers(stack)))
        event["headers"] = {canonical_header_name(k): v for k, v in event["headers"].items()}
        assert "X-Api-Key" in event["headers"] and "x-api-key" not in event["headers"]
        result = stack.gateway.invoke(name, json.dumps(event, ensure_ascii=False).encode())
        assert result["statusCode"] in {200, 302}, (name, result)


@pytest.mark.parametrize("form", ["raw", "url-encoded"])
def test_the_oss_event_with_the_key_raw_and_url_encoded(stack, form):
    key = f"incoming/{form} a b+c 报告.txt"
    body = f"content of {key}".encode()
    bucket = root_bucket(stack)
    bucket.put_object(key, body)
    head = bucket.head_object(key)
    event_key = key if form == "raw" else quote(key, safe="/")
    event = json.loads((ROOT / "events" / "on_upload.json").read_text())
    record = event["events"][0]
    record["oss"]["object"].update({"key": event_key, "eTag": head.etag.upper(), "size": len(body),
                                    "deltaSize": len(body)})
    record["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    result = stack.gateway.invoke("on_upload", json.dumps(event, ensure_ascii=False).encode())
    assert result["failed"] == [] and len(result["links"]) == 1, result
    link = json.loads(bucket.get_object(f"_links/{key}.json").read())
    assert link["key"] == key and fetch(link["url"]) == body


def test_the_export_hands_off_to_its_asynchronous_continuation(stack):
    payload = {"prefixes": ["data/"], "format": "csv", "part_size": 102400, "expires": 3600}
    tick = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    event = json.dumps({"triggerTime": tick, "triggerName": "handoff", "payload": json.dumps(payload)}).encode()
    first = stack.gateway.invoke("export", event, timeout=2)  # less than EXPORT_MIN_REMAINING_SECONDS: hand off
    assert first["status"] == "continued" and first["hop"] == 1, first
    deadline = time.monotonic() + 120
    done = None
    while done is None and time.monotonic() < deadline:
        done = next((i["result"] for i in list(stack.gateway.invocations)
                     if i["ok"] and isinstance(i["result"], dict) and i["result"].get("status") == "done"
                     and i["result"].get("export_id") == first["export_id"]), None)
        time.sleep(0.1)
    assert done is not None, stack.gateway.invocations[-3:]
    assert done["hops"] == 1 and done["rows"] == 3000
    rows = fetch(done["url"]).decode().splitlines()
    assert len(rows) == 3001 and rows[1].startswith("data/00000.bin,")


def test_urls_signed_with_the_signer_role(tmp_path, built_archives, runtime_python):
    with archive_stack(tmp_path, built_archives, runtime_python, UseSignerRole="true") as signer_stack:
        status, _, body = request(f"{signer_stack.gateway.url}/sign?key=exampledir/exampleobject.txt&expires=30000",
                                  headers=caller_headers(signer_stack))
        assert status == 200, body
        answer = json.loads(body)
        access_key = parse_qs(urlsplit(answer["url"]).query)["x-oss-credential"][0].split("/")[0]
        session = signer_stack.cloud.token_store.by_access_key(access_key)
        assert session.role_arn == signer_stack.template.roles["SignerRole"].arn
        assert answer["expires_in"] == 30000 and fetch(answer["url"]) == HELLO
        status, headers, _ = request(f"{signer_stack.gateway.url}/download/exampledir/exampleobject.txt",
                                     headers=caller_headers(signer_stack))
        assert status == 302 and fetch(headers["Location"]) == HELLO


def test_a_layer_without_async_timeout_fails_the_token_function(tmp_path, built_archives, runtime_python):
    """pip resolving on 3.11 leaves async_timeout out; on python3.10 aiohttp, and with it the STS SDK, then fails."""
    broken = tmp_path / "dist"
    broken.mkdir()
    for archive in built_archives.glob("*.zip"):
        if archive.name != "layer.zip":
            shutil.copyfile(archive, broken / archive.name)
    with zipfile.ZipFile(built_archives / "layer.zip") as source, \
            zipfile.ZipFile(broken / "layer.zip", "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if not info.filename.startswith("python/async_timeout"):
                target.writestr(info, source.read(info))
    with archive_stack(tmp_path / "data", broken, runtime_python) as broken_stack:
        lines: list[str] = []
        broken_stack.gateway.log_listeners.append(lambda _function, line: lines.append(line))
        status, _, body = request(f"{broken_stack.gateway.url}/sts", method="POST",
                                  headers=caller_headers(broken_stack), data=b"")
        assert status >= 500, body
        assert b"AccessKeyId" not in body
        time.sleep(0.5)  # the worker's stderr reaches the listeners on its own thread
        assert any("No module named 'async_timeout'" in line for line in lines), lines[-20:]


def test_local_up_runs_the_archives_under_the_given_interpreter(tmp_path, built_archives, runtime_python):
    """The command line a user types: `python -m local up --archives dist --python python3.10`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "up", "--port", "0", "--oss-port", "0", "--sts-port", "0", "--no-timers",
         "--data", str(tmp_path), "--archives", str(built_archives), "--python", runtime_python],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output: list[str] = []
        url = api_key = None
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while (url is None or api_key is None) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if match := re.search(r"gateway \(custom-domain routes [^)]*\): (http://\S+)", line):
                url = match.group(1)
            if match := re.search(r"X-Api-Key: (\S+)", line):
                api_key = match.group(1)
        assert url and api_key, "".join(output)
        status, _, body = request(f"{url}/sts", method="POST", headers={"X-Api-Key": api_key}, data=b"")
        assert status == 200 and json.loads(body)["AccessKeyId"].startswith("STS."), body
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
