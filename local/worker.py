"""One function instance: a process that imports one handler and runs invocations sent by the gateway.

Like a Function Compute instance, each function runs in its own process with its own environment
variables and module state, so cold starts are real and functions cannot see each other's settings.
Protocol: one length-prefixed JSON frame per invocation on stdin, one per result on the original stdout
(binary frames: a multi-megabyte base64 body crosses the pipe in a few large reads, not line by line);
everything the handler prints or logs goes to stderr, which the gateway forwards.

The handler is found as FC finds it (function-compute.md, sections 0 and 10): ``<file>.<method>`` imported from
the function's own code root (``--code``, FC's /code), with each layer's python directory (``--layer``, FC's
/opt/python) after it on sys.path. The gateway starts this file as a script with ``-I`` (and ``-S`` for unpacked
archives), so neither the repository nor the current directory is importable: only the code package, the layers
and the interpreter's own library. It therefore imports nothing but the standard library.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: str | None = None  # ISO 8601; not in FC's own context, read when present


@dataclass
class FunctionMeta:
    name: str
    handler: str
    memory: int
    timeout: int


@dataclass
class ServiceMeta:
    log_project: str = ""
    log_store: str = ""
    qualifier: str = "LATEST"
    version_id: str = ""


@dataclass
class Context:
    """The FC 3.0 python3.10 context object, as the runtime passes it."""

    request_id: str
    account_id: str
    region: str
    credentials: Credentials
    function: FunctionMeta
    service: ServiceMeta


def build_context(data: dict[str, Any]) -> Context:
    return Context(
        request_id=data["request_id"],
        account_id=data["account_id"],
        region=data["region"],
        credentials=Credentials(**data["credentials"]),
        function=FunctionMeta(**data["function"]),
        service=ServiceMeta(),
    )


def write_frame(stream: Any, payload: bytes) -> None:
    stream.write(b"%d\n" % len(payload) + payload)
    stream.flush()


def read_frame(stream: Any) -> bytes | None:
    """The next frame, or None at end of stream."""
    header = stream.readline()
    if not header:
        return None
    size = int(header)
    payload = stream.read(size)
    if len(payload) != size:
        raise EOFError("truncated frame")
    return payload


def encode_result(result: Any) -> Any:
    if isinstance(result, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(result)).decode()}
    return result


def decode_result(result: Any) -> Any:
    if isinstance(result, dict) and set(result) == {"__bytes__"}:
        return base64.b64decode(result["__bytes__"])
    return result


def _load(path: str) -> Any:
    """``<file>.<method>``: the module is a file at the code root, not a dotted package path."""
    module_name, _, attribute = path.partition(".")
    return getattr(importlib.import_module(module_name), attribute)


def main() -> None:
    parser = argparse.ArgumentParser(description="one function instance (started by local.gateway)")
    parser.add_argument("--code", required=True, help="the function's code root (FC: /code)")
    parser.add_argument("--layer", action="append", default=[], help="a layer's python directory (FC: /opt/python)")
    parser.add_argument("handler", help="<file>.<method>")
    parser.add_argument("initializer", nargs="?", help="<file>.<method> run once before the first event")
    args = parser.parse_args()
    sys.path[:0] = [args.code, *args.layer]
    handler_path, initializer_path = args.handler, args.initializer
    protocol_in = sys.stdin.buffer
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the handler's prints and logs go to stderr
    sys.stdout = sys.stderr
    handler = None
    while (frame := read_frame(protocol_in)) is not None:
        request = json.loads(frame)
        started = time.perf_counter()
        try:
            if handler is None:  # imported on the first invocation: a real cold start
                context = build_context(request["context"])
                if initializer_path:  # FC runs the initializer once per instance, before the first event
                    _load(initializer_path)(context)
                handler = _load(handler_path)
            event = base64.b64decode(request["event"])
            result = handler(event, build_context(request["context"]))
            reply = {"ok": True, "result": encode_result(result)}
        except Exception as exc:  # an unhandled function error, reported like FC does
            traceback.print_exc()
            reply = {"ok": False, "error": {"errorType": type(exc).__name__, "errorMessage": str(exc)[:500]}}
        reply["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        write_frame(protocol_out, json.dumps(reply, default=str).encode())


if __name__ == "__main__":
    main()
