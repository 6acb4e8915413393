"""Runs template.yml locally: each function in its own worker process, with its own environment and
the credentials of its own template role (assumed on the local STS, so the emulator enforces the
template's policies), behind HTTP triggers, OSS triggers, timers and an InvokeFunction API.

Code is found as FC finds it: each function's package is named by its ``Code.OssObjectName`` (``<prefix>token.zip``)
and its layers by ``Layers``. From the repository (the default) the package is ``functions/token/`` and the layer is
``shared/`` with the development interpreter's site-packages standing in for its dependencies; with ``archives``
(the output of ``make package``) the zips are unpacked and run under the given interpreter with ``-I -S``, so only
the standard library, the code package and the layer are importable, as on FC.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local import iam
from local.sts import Role, _acs3_canonical_query
from local.template import FunctionSpec, Template, TemplateError
from local.worker import decode_result, read_frame, write_frame

ROOT = Path(__file__).resolve().parent.parent
WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"
FUNCTION_CREDENTIAL_SECONDS = 36 * 3600  # FC role credentials last 36 h
CREDENTIAL_REFRESH_SECONDS = 12 * 3600
RESERVED_RESPONSE_HEADERS = {"connection", "content-length", "date", "keep-alive", "server", "transfer-encoding"}
INVOKE_PATH = re.compile(r"^/2023-03-30/functions/([^/]+)/invocations$")
LISTEN_BACKLOG = 128  # connections the kernel queues while every handler thread is busy (socketserver's default: 5)
SIGNATURE_SKEW_SECONDS = 15 * 60  # x-acs-date must be this close to now, as Alibaba Cloud APIs require


class FunctionError(RuntimeError):
    """The handler raised: FC reports an unhandled function error."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG


# --- the InvokeFunction API: ACS3-signed, by a principal allowed fc:InvokeFunction ---------------------------


class InvokeDenied(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class InvokeAuthorizer:
    """Checks an InvokeFunction request as FC does: an ACS3-HMAC-SHA256 signature (header form, as
    alibabacloud-tea-openapi sends it) by the account's key, or by an STS session whose policies allow
    ``fc:InvokeFunction`` on ``acs:fc:<region>:<account>:functions/<name>``; fresh date, unused nonce."""

    def __init__(self, root_keys: Mapping[str, str], tokens: Any, region: str, account_id: str,
                 clock: Callable[[], float] = time.time):
        self.root_keys, self.tokens, self.region, self.account_id = dict(root_keys), tokens, region, account_id
        self.clock = clock
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def authorize(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
                  function: str) -> str:
        """The caller's principal; raises InvokeDenied."""
        from urllib.parse import parse_qsl

        headers = {name.lower(): value for name, value in headers.items()}
        algorithm, _, rest = headers.get("authorization", "").partition(" ")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part)
        access_key_id, signed, signature = (fields.get(n, "") for n in ("Credential", "SignedHeaders", "Signature"))
        if algorithm != "ACS3-HMAC-SHA256" or not (access_key_id and signed and signature):
            raise InvokeDenied(401, "IncompleteSignature", "the request must carry an ACS3-HMAC-SHA256 signature")
        signed_names = signed.split(";")
        required = {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
        required |= {name for name in headers if name.startswith("x-acs-")}
        if not required <= set(signed_names) or any(name not in headers for name in signed_names):
            raise InvokeDenied(401, "IncompleteSignature",
                               "the signature must cover host and every x-acs-* header")
        payload_hash = headers["x-acs-content-sha256"].lower()
        canonical_request = "\n".join([
            method, path, _acs3_canonical_query(parse_qsl(query, keep_blank_values=True)),
            "".join(f"{name}:{headers[name].strip()}\n" for name in sorted(signed_names)),
            ";".join(sorted(signed_names)), payload_hash,
        ])
        string_to_sign = f"{algorithm}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        secret, principal, session = self._secret(access_key_id, headers.get("x-acs-security-token"))
        expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not (hmac.compare_digest(expected, signature.lower())
                and hmac.compare_digest(hashlib.sha256(body).hexdigest(), payload_hash)):
            raise InvokeDenied(403, "SignatureDoesNotMatch", "the request signature does not match")
        self._fresh(headers["x-acs-date"], headers["x-acs-signature-nonce"])
        resource = f"acs:fc:{self.region}:{self.account_id}:functions/{function}"
        if session is not None and not iam.is_allowed(session.role_policies, session.session_policy,
                                                      "fc:InvokeFunction", resource):
            raise InvokeDenied(403, "AccessDenied", f"{principal} is not allowed fc:InvokeFunction on {resource}")
        return principal

    def _secret(self, access_key_id: str, token: str | None) -> tuple[str, str, Any]:
        if access_key_id in self.root_keys:
            return self.root_keys[access_key_id], f"acs:ram::{self.account_id}:root", None
        session = self.tokens.by_access_key(access_key_id) if access_key_id.startswith("STS.") else None
        if session is None:
            raise InvokeDenied(403, "InvalidAccessKeyId.NotFound", "the access key is not found")
        if not token or not hmac.compare_digest(token, session.security_token):
            raise InvokeDenied(403, "InvalidSecurityToken", "the security token is missing or does not match")
        if session.is_expired():
            raise InvokeDenied(403, "InvalidSecurityToken.Expired", "the security token has expired")
        return session.access_key_secret, session.assumed_role_arn, session

    def _fresh(self, date: str, nonce: str) -> None:
        try:
            signed_at = datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise InvokeDenied(400, "InvalidTimeStamp.Format", "x-acs-date must be yyyy-MM-ddTHH:mm:ssZ") from None
        now = self.clock()
        if abs(now - signed_at) > SIGNATURE_SKEW_SECONDS:
            raise InvokeDenied(403, "InvalidTimeStamp.Expired", "x-acs-date is more than 15 minutes from now")
        with self._lock:
            self._nonces = {n: at for n, at in self._nonces.items() if now - at <= 2 * SIGNATURE_SKEW_SECONDS}
            if nonce in self._nonces:
                raise InvokeDenied(403, "SignatureNonceUsed", "the signature nonce has been used")
            self._nonces[nonce] = now


def invoke_via_api(endpoint: str, function: str, body: bytes, *, access_key_id: str, access_key_secret: str,
                   security_token: str | None = None, region: str, asynchronous: bool = False,
                   timeout_seconds: int = 60) -> tuple[int, bytes]:
    """InvokeFunction (2023-03-30, ROA, ACS3-signed) through alibabacloud-tea-openapi, as the export's own
    continuation calls it: (status, body). For `local invoke` and tests."""
    from urllib.parse import quote

    from alibabacloud_tea_openapi.client import Client
    from alibabacloud_tea_openapi.utils_models import Config, OpenApiRequest, Params
    from darabonba.runtime import RuntimeOptions

    scheme, _, host = endpoint.partition("://")
    client = Client(Config(access_key_id=access_key_id, access_key_secret=access_key_secret,
                           security_token=security_token, endpoint=host, protocol=scheme, region_id=region,
                           connect_timeout=5000, read_timeout=timeout_seconds * 1000))
    params = Params(action="InvokeFunction", version="2023-03-30", protocol=scheme, method="POST", auth_type="AK",
                    style="ROA", pathname=f"/2023-03-30/functions/{quote(function, safe='')}/invocations",
                    req_body_type="byte", body_type="byte")
    request = OpenApiRequest(headers={"x-fc-invocation-type": "Async" if asynchronous else "Sync",
                                      "content-type": "application/json"}, body=body)
    response = client.call_api(params, request, RuntimeOptions(autoretry=False))
    return int(response.get("statusCode", 200)), bytes(response.get("body") or b"")


def new_request_id() -> str:
    """An id shaped like FC's (``1-<8 hex>-<24 hex>``)."""
    return f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"


# --- code packages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionCode:
    """Where one function's instances import from, and with which interpreter."""

    interpreter: str
    flags: tuple[str, ...]
    code_dir: Path  # FC's /code
    layer_dirs: tuple[Path, ...]  # FC's /opt/python, one per layer

    def command(self, spec: FunctionSpec) -> list[str]:
        layers = [arg for path in self.layer_dirs for arg in ("--layer", str(path))]
        return [self.interpreter, *self.flags, str(WORKER_SCRIPT), "--code", str(self.code_dir), *layers,
                spec.handler, *([spec.initializer] if spec.initializer else [])]


class CodeLayout:
    """Resolves each function's code package and layers, from the repository or from built archives."""

    def __init__(self, template: Template, *, archives: Path | None = None, python: str | None = None,
                 functions_dir: Path = ROOT / "functions", shared_dir: Path = ROOT / "shared"):
        self.template = template
        self.archives = Path(archives) if archives else None
        self.python = python or sys.executable
        self.functions_dir = Path(functions_dir)
        self.shared_dir = Path(shared_dir)
        self._scratch_dir: Path | None = None
        self._unpacked: dict[str, Path] = {}
        self._lock = threading.Lock()

    @property
    def _scratch(self) -> Path:
        if self._scratch_dir is None:
            self._scratch_dir = Path(tempfile.mkdtemp(prefix="local-fc-code-"))
        return self._scratch_dir

    def close(self) -> None:
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None

    def for_function(self, spec: FunctionSpec) -> FunctionCode:
        if self.archives is None:
            return self._from_repository(spec)
        return self._from_archives(spec)

    def _from_repository(self, spec: FunctionSpec) -> FunctionCode:
        code_dir = self.functions_dir / spec.short_name
        module = spec.handler.partition(".")[0]
        if not (code_dir / f"{module}.py").is_file():
            raise TemplateError(f"{spec.logical_id}: {spec.code.object_name if spec.code else '?'} would hold "
                                f"{code_dir.relative_to(self.functions_dir.parent)}/, which has no {module}.py")
        # The layer's python/ holds only shared/: a directory with a link to it keeps the repository root (and
        # its functions/ package) off sys.path. The development site-packages stand in for the pinned deps.
        layer_dir = self._scratch / "repository-layer" / "python"
        with self._lock:
            if not layer_dir.exists():
                layer_dir.mkdir(parents=True)
                (layer_dir / "shared").symlink_to(self.shared_dir, target_is_directory=True)
        # Whatever ARN the function names (the stack's layer or ExistingLayerArn), the repository's shared/ is
        # that layer here; a function without Layers gets none, as on FC.
        return FunctionCode(self.python, ("-I", "-B"), code_dir, (layer_dir,) if spec.layers else ())

    def _from_archives(self, spec: FunctionSpec) -> FunctionCode:
        assert self.archives is not None and spec.code is not None
        code_dir = self._unpack(spec.code.archive_name)
        layer_dirs = []
        for arn in spec.layers:
            layer = self.template.layers.get(arn)
            if layer is None:  # an existing layer: only its archive, built by `make package`, can stand for it
                raise TemplateError(f"{spec.logical_id}: layer {arn} is not published by this template; the local "
                                    "gateway runs only layers whose archive it has")
            layer_dirs.append(self._unpack(layer.code.archive_name) / "python")
        return FunctionCode(self.python, ("-I", "-S", "-B"), code_dir, tuple(layer_dirs))

    def _unpack(self, archive_name: str) -> Path:
        """FC extracts a code package to /code and a layer to /opt; each archive is unpacked once."""
        import zipfile

        assert self.archives is not None
        with self._lock:
            if archive_name in self._unpacked:
                return self._unpacked[archive_name]
            source = self.archives / archive_name
            if not source.is_file():
                raise TemplateError(f"{source} does not exist: build the archives first (make package)")
            target = self._scratch / archive_name.removesuffix(".zip")
            with zipfile.ZipFile(source) as archive:
                archive.extractall(target)
            self._unpacked[archive_name] = target
            return target


# --- function instances ---------------------------------------------------------------------------


class Worker:
    """A running function instance (one process, one invocation at a time)."""

    def __init__(self, spec: FunctionSpec, code: FunctionCode, env: Mapping[str, str],
                 log: Callable[[str, str], None]):
        self.spec = spec
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and worker script
            code.command(spec), cwd=code.code_dir, env=dict(env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lock = threading.Lock()
        threading.Thread(target=self._forward_logs, args=(log,), daemon=True).start()

    def _forward_logs(self, log: Callable[[str, str], None]) -> None:
        assert self.process.stderr is not None
        for line in io.TextIOWrapper(self.process.stderr, encoding="utf-8", errors="replace"):
            log(self.spec.name, line.rstrip("\n"))

    def invoke(self, event: bytes, context: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = json.dumps({"event": base64.b64encode(event).decode(), "context": context}).encode()
        with self.lock:
            try:
                write_frame(self.process.stdin, request)
                reply = read_frame(self.process.stdout)
            except (BrokenPipeError, EOFError):
                reply = None
        if reply is None:
            raise FunctionError(f"{self.spec.name}: instance exited (code {self.process.poll()})")
        return json.loads(reply)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


class FunctionPool:
    """Instances of one function, started on demand up to ``size`` (FC scales out the same way)."""

    def __init__(self, spec: FunctionSpec, code: FunctionCode, env: Mapping[str, str], size: int,
                 log: Callable[[str, str], None]):
        self.spec, self.code, self.env, self.size, self.log = spec, code, dict(env), size, log
        self.idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self.started = 0
        self.lock = threading.Lock()
        self.all: list[Worker] = []

    def acquire(self) -> Worker:
        with self.lock:
            if self.idle.empty() and self.started < self.size:
                self.started += 1
                worker = Worker(self.spec, self.code, self.env, self.log)
                self.all.append(worker)
                return worker
        return self.idle.get()

    def release(self, worker: Worker) -> None:
        if worker.alive:
            self.idle.put(worker)
        else:
            with self.lock:
                self.started -= 1

    def stop(self) -> None:
        for worker in self.all:
            worker.stop()


# --- the gateway ----------------------------------------------------------------------------------


@dataclass
class GatewayConfig:
    port: int = 9999
    host: str = "127.0.0.1"
    instances: int = 2
    # extra environment per function short name ("token", ...), "*" for every function
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    timers: bool = True
    echo_logs: bool = True
    # FC's python3.10 context carries no credential expiration; locally we know it and pass it (so URLs are
    # not capped at FUNCTION_CREDENTIALS_LIFETIME). False is the cloud's behaviour exactly.
    pass_credentials_expiration: bool = True
    invoke_port: int = 0  # the InvokeFunction API, on a loopback port of its own (0: any free port)
    # None: run the functions from the repository; a directory: from the archives `make package` built there
    archives: Path | None = None
    python: str | None = None  # the interpreter for the archives (default: this one)
    functions_dir: Path = ROOT / "functions"


@dataclass
class FunctionCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: datetime


class Gateway:
    def __init__(self, template: Template, cloud: Any, config: GatewayConfig):
        self.template = template
        self.cloud = cloud
        self.config = config
        self.pools: dict[str, FunctionPool] = {}
        self.credentials: dict[str, FunctionCredentials] = {}
        self.credentials_lock = threading.Lock()
        self.async_queue: queue.Queue[tuple[str, bytes, int, str] | None] = queue.Queue()
        self.server: ThreadingHTTPServer | None = None
        self.invoke_server: ThreadingHTTPServer | None = None
        self.authorizer = InvokeAuthorizer(cloud.config.root_keys, cloud.token_store, template.region,
                                           template.account_id)
        self.code = CodeLayout(template, archives=config.archives, python=config.python,
                               functions_dir=config.functions_dir)
        self.log_listeners: list[Callable[[str, str], None]] = []
        self.invocations: list[dict[str, Any]] = []  # async results, for tests and the CLI
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle --
    def start(self) -> Gateway:
        self.server = _Server((self.config.host, self.config.port), _make_http_handler(self))
        self.config.port = self.server.server_address[1]
        # FC's API is another endpoint than the HTTP triggers: served on loopback only, ACS3-signed requests only
        self.invoke_server = _Server(("127.0.0.1", self.config.invoke_port), _make_invoke_handler(self))
        self.config.invoke_port = self.invoke_server.server_address[1]
        try:
            codes = {spec.name: self.code.for_function(spec) for spec in self.template.functions.values()}
        except Exception:
            self.server.server_close()
            self.invoke_server.server_close()
            self.code.close()
            raise
        for spec in self.template.functions.values():
            self.pools[spec.name] = FunctionPool(spec, codes[spec.name], self._environment(spec),
                                                 self.config.instances, self._log)
        self._spawn(self.server.serve_forever)
        self._spawn(self.invoke_server.serve_forever)
        self._spawn(self._async_loop)
        self._subscribe_oss_triggers()
        if self.config.timers:
            for trigger in self.template.triggers:
                if trigger.type == "timer" and trigger.config.get("enable", True):
                    self._spawn(self._timer_loop, trigger)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.async_queue.put(None)
        for server in (self.server, self.invoke_server):
            if server:
                server.shutdown()
                server.server_close()
        for pool in self.pools.values():
            pool.stop()
        self.code.close()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def invoke_url(self) -> str:
        """The InvokeFunction endpoint (FC's https://<account>.<region>.fc.aliyuncs.com)."""
        return f"http://127.0.0.1:{self.config.invoke_port}"

    def _spawn(self, target: Callable[..., Any], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    @contextlib.contextmanager
    def captured_logs(self) -> Iterator[list[dict[str, Any]]]:
        """The functions' JSON log records while the block runs (tests, tools)."""
        records: list[dict[str, Any]] = []

        def listen(_function: str, line: str) -> None:
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))

        self.log_listeners.append(listen)
        try:
            yield records
        finally:
            self.log_listeners.remove(listen)

    def _log(self, function: str, line: str) -> None:
        for listener in self.log_listeners:
            listener(function, line)
        if self.config.echo_logs:
            print(f"[{function}] {line}", flush=True)

    # -- environment and credentials --
    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        oss = f"http://{self.cloud.oss_endpoint}"
        env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG", "TZ", "TMPDIR"}}
        env.update(spec.environment)
        env.update({
            "OSS_ENDPOINT": oss,
            "OSS_INTERNAL_ENDPOINT": oss,
            "STS_ENDPOINT": f"http://{self.cloud.sts_endpoint}",
            "ASYNC_INVOKE_ENDPOINT": self.invoke_url,
            "OSS_ACCOUNT_ID": self.template.account_id,
            "FC_ACCOUNT_ID": self.template.account_id,
            "FC_REGION": self.template.region,
            "FC_FUNCTION_NAME": spec.name,
            "FC_FUNCTION_HANDLER": spec.handler,
            "FC_FUNCTION_MEMORY_SIZE": str(spec.memory),
        })
        domain = self.template.parameters.get("ApiDomainName")
        if domain and env.get("DOWNLOAD_BASE_URL") == f"https://{domain}":
            env["DOWNLOAD_BASE_URL"] = self.url  # locally the custom domain is served by this gateway (its "DNS")
        env.update(self.config.env_overrides.get("*", {}))
        env.update(self.config.env_overrides.get(spec.short_name, {}))
        return env

    def function_credentials(self, spec: FunctionSpec) -> FunctionCredentials:
        """The function role's credentials, issued by the local STS as FC would, refreshed early."""
        now = datetime.now(timezone.utc)
        with self.credentials_lock:
            current = self.credentials.get(spec.name)
            if current and (current.expiration - now).total_seconds() > CREDENTIAL_REFRESH_SECONDS:
                return current
            role = self.template.role_of(spec)
            if role is None:
                raise RuntimeError(f"{spec.name} has no role")
            # FC assumes the function role for the instance; the session carries the role's policies, so
            # the emulator enforces exactly what the template grants.
            session = self.cloud.token_store.issue(
                Role(arn=role.arn, policies=role.policies, trust=[], max_session_duration=FUNCTION_CREDENTIAL_SECONDS),
                f"fc-{spec.short_name}".replace("_", "-"), FUNCTION_CREDENTIAL_SECONDS, None)
            current = FunctionCredentials(session.access_key_id, session.access_key_secret,
                                          session.security_token, session.expiration)
            self.credentials[spec.name] = current
            return current

    def _context(self, spec: FunctionSpec, request_id: str, timeout: int | None) -> dict[str, Any]:
        creds = self.function_credentials(spec)
        credentials = {"access_key_id": creds.access_key_id, "access_key_secret": creds.access_key_secret,
                       "security_token": creds.security_token}
        if self.config.pass_credentials_expiration:
            credentials["expiration"] = creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "request_id": request_id,
            "account_id": self.template.account_id,
            "region": self.template.region,
            "credentials": credentials,
            "function": {"name": spec.name, "handler": spec.handler, "memory": spec.memory,
                         "timeout": timeout or spec.timeout},
        }

    # -- invocation --
    def invoke(self, function: str, event: bytes, *, request_id: str | None = None,
               timeout: int | None = None) -> Any:
        """Synchronous invocation; raises FunctionError when the handler raised."""
        spec = self.template.function_by_short_name(function)
        pool = self.pools[spec.name]
        request_id = request_id or new_request_id()
        worker = pool.acquire()
        try:
            reply = worker.invoke(event, self._context(spec, request_id, timeout))
        finally:
            pool.release(worker)
        if not reply["ok"]:
            raise FunctionError(json.dumps(reply["error"]))
        return decode_result(reply["result"])

    def invoke_async(self, function: str, event: bytes) -> str:
        """Queue an asynchronous invocation; its retries keep the request id, as FC's do."""
        request_id = new_request_id()
        self.async_queue.put((function, event, 0, request_id))
        return request_id

    def _async_loop(self) -> None:
        while not self._stop.is_set():
            item = self.async_queue.get()
            if item is None:
                return
            self._spawn(self._run_async, *item)

    def _run_async(self, function: str, event: bytes, attempt: int, request_id: str) -> None:
        spec = self.template.function_by_short_name(function)
        record = {"function": spec.name, "attempt": attempt, "request_id": request_id}
        try:
            result = self.invoke(function, event, request_id=request_id)
            self.invocations.append({**record, "ok": True, "result": result})
        except Exception as exc:  # retried as FC retries async invocations
            retries = self.template.async_retries.get(spec.name, 3)
            self.invocations.append({**record, "ok": False, "error": str(exc)})
            if attempt < retries and not self._stop.is_set():
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
                self.async_queue.put((function, event, attempt + 1, request_id))

    # -- triggers --
    def _subscribe_oss_triggers(self) -> None:
        bucket = self.template.parameters.get("BucketName", "")
        for trigger in self.template.triggers:
            if trigger.type != "oss":
                continue
            key_filter = trigger.config.get("filter", {}).get("key", {})
            function = trigger.function

            def deliver(event: Mapping[str, Any], function: str = function) -> None:
                self.invoke_async(function, json.dumps(event).encode())

            self.cloud.subscribe(deliver, bucket=bucket, prefix=key_filter.get("prefix", ""),
                                 suffix=key_filter.get("suffix", ""), events=tuple(trigger.config["events"]))

    def _timer_loop(self, trigger: Any) -> None:
        schedule = TimerSchedule(trigger.config["cronExpression"])
        while not self._stop.is_set():
            now = datetime.now(timezone.utc)
            next_fire = schedule.next_after(now)
            if self._stop.wait(max(0.0, (next_fire - now).total_seconds())):
                return
            event = {"triggerTime": next_fire.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": trigger.name,
                     "payload": trigger.config.get("payload", "")}
            self.invoke_async(trigger.function, json.dumps(event).encode())

    # -- HTTP triggers --
    def route(self, path: str) -> FunctionSpec | None:
        for route in self.template.routes:
            if route.path.endswith("/*"):
                if path.startswith(route.path[:-1]) or path == route.path[:-2]:
                    return self.template.functions[route.function]
            elif path == route.path:
                return self.template.functions[route.function]
        return None


class TimerSchedule:
    """FC timer expressions: `@every 5m` or six cron fields (seconds first), optional CRON_TZ= prefix."""

    def __init__(self, expression: str):
        from zoneinfo import ZoneInfo

        self.every: timedelta | None = None
        self.zone = ZoneInfo("UTC")
        text = expression.strip()
        if text.startswith("CRON_TZ="):
            zone, text = text.split(None, 1)
            self.zone = ZoneInfo(zone.split("=", 1)[1])
        match = re.fullmatch(r"@every\s+(\d+)([smh])", text)
        if match:
            self.every = timedelta(seconds=int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)])
        self.cron = text

    def next_after(self, now: datetime) -> datetime:
        if self.every is not None:
            return now + self.every
        from croniter import croniter

        local = now.astimezone(self.zone)
        return croniter(self.cron, local, second_at_beginning=True).get_next(datetime).astimezone(timezone.utc)


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def canonical_header_name(name: str) -> str:
    """Header names as FC's front end delivers them: Go's canonical MIME form (``x-api-key`` -> ``X-Api-Key``),
    https://pkg.go.dev/net/textproto#CanonicalMIMEHeaderKey; a name with other characters is left as sent."""
    if not name or not set(name) <= _TOKEN_CHARS:
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def http_event(method: str, raw_path: str, query: list[tuple[str, str]], headers: Mapping[str, str], body: bytes,
               source_ip: str, account_id: str, request_id: str) -> dict[str, Any]:
    """The FC 3.0 HTTP trigger event, repeated headers and query keys joined with commas."""
    joined_query: dict[str, str] = {}
    for key, value in query:
        joined_query[key] = f"{joined_query[key]},{value}" if key in joined_query else value
    try:
        text_body, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    now = datetime.now(timezone.utc)
    return {
        "version": "v1",
        "rawPath": raw_path,
        "body": text_body,
        "isBase64Encoded": is_base64,
        "headers": dict(headers),
        "queryParameters": joined_query,
        "requestContext": {
            "accountId": account_id,
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {"method": method, "path": unquote(raw_path), "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": next((v for k, v in headers.items() if k.lower() == "user-agent"), "")},
            "requestId": request_id,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timeEpoch": str(int(now.timestamp() * 1000)),
        },
    }


class _HttpTriggerHandler(BaseHTTPRequestHandler):
    """The HTTP triggers: a request becomes the function's HTTP event, its answer the response."""

    gateway: Gateway  # set on the subclass _make_http_handler makes
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "local-fc"

    def log_message(self, *_args: Any) -> None:  # the functions log their own access lines
        return

    def _dispatch(self) -> None:
        request_id = new_request_id()
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if parts.path == "/__health":  # `local invoke` finds the API endpoint here (it is not a secret)
            return self._send(200, {"content-type": "application/json"},
                              json.dumps({"status": "ok", "invokeEndpoint": self.gateway.invoke_url}).encode())
        spec = self.gateway.route(unquote(parts.path))
        if spec is None:
            return self._send(404, {"content-type": "application/json"},
                              json.dumps({"code": "RouteNotFound", "message": "no route for this path",
                                          "requestId": request_id}).encode())
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            name = canonical_header_name(key)
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        event = http_event(self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True), headers,
                           body, self.client_address[0], self.gateway.template.account_id, request_id)
        try:
            result = self.gateway.invoke(spec.name, json.dumps(event).encode(), request_id=request_id)
        except FunctionError as exc:
            return self._send(502, {"content-type": "application/json", "x-fc-request-id": request_id},
                              json.dumps({"code": "UnhandledInvocationError", "message": str(exc),
                                          "requestId": request_id}).encode())
        self._send_function_response(result, request_id)

    def _send_function_response(self, result: Any, request_id: str) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            payload = result if isinstance(result, bytes) else str(result).encode()
            return self._send(200, {"x-fc-request-id": request_id}, payload)
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()
                   if k.lower() not in RESERVED_RESPONSE_HEADERS and not k.lower().startswith("x-fc-")}
        headers["x-fc-request-id"] = request_id
        self._send(int(result["statusCode"]), headers, payload, head=self.command == "HEAD")

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes, head: bool = False) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _dispatch


class _InvokeApiHandler(BaseHTTPRequestHandler):
    """FC's InvokeFunction API (POST /2023-03-30/functions/<name>/invocations), ACS3-signed."""

    gateway: Gateway  # set on the subclass _make_invoke_handler makes
    protocol_version = "HTTP/1.1"
    server_version = "local-fc-api"

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:
        request_id = new_request_id()
        parts = urlsplit(self.path)
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 32 * 1024 * 1024:  # FC's synchronous invocation payload limit
            return self._error(400, "InvalidArgument", "bad Content-Length", request_id)
        body = self.rfile.read(length) if length else b""
        match = INVOKE_PATH.match(parts.path)
        if match is None:
            return self._error(404, "PathNotSupported", "only InvokeFunction is served here", request_id)
        function = unquote(match.group(1))
        try:
            self.gateway.authorizer.authorize("POST", parts.path, parts.query, dict(self.headers.items()), body,
                                         function)
        except InvokeDenied as denied:
            return self._error(denied.status, denied.code, denied.message, request_id)
        if function not in self.gateway.template.functions:
            return self._error(404, "FunctionNotFound", f"function {function[:64]!r} does not exist", request_id)
        if self.headers.get("x-fc-invocation-type", "").lower() == "async":
            self.gateway.invoke_async(function, body)
            return self._send(202, {"x-fc-request-id": request_id}, b"")
        try:
            result = self.gateway.invoke(function, body, request_id=request_id)
        except FunctionError as exc:
            return self._send(200, {"x-fc-error-type": "UnhandledInvocationError",
                                    "x-fc-request-id": request_id}, str(exc).encode())
        payload = result if isinstance(result, bytes) else json.dumps(result).encode()
        self._send(200, {"x-fc-request-id": request_id}, payload)

    def do_GET(self) -> None:
        self._error(404, "PathNotSupported", "only InvokeFunction is served here", new_request_id())

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _error(self, status: int, code: str, message: str, request_id: str) -> None:
        self._send(status, {"content-type": "application/json", "x-fc-request-id": request_id},
                   json.dumps({"code": code, "message": message, "requestId": request_id}).encode())

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)



def _make_http_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(_HttpTriggerHandler):
        pass

    Handler.gateway = gateway
    return Handler


def _make_invoke_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(_InvokeApiHandler):
        pass

    InvokeHandler.gateway = gateway
    return InvokeHandler
