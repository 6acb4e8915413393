"""A webhook receiver on 127.0.0.1 for tests: answers a scripted list of statuses and records requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once exhausted
    # per object key (the body's "key"): scripted answers that no other delivery in flight can consume
    statuses_for: dict[str, list[int]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    drop_connections: int = 0  # close the first N connections without an answer (network errors)
    extra_headers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self, body: bytes = b"") -> int:
        with self.lock:
            if self.statuses_for:
                try:
                    key = json.loads(body).get("key")
                except (ValueError, AttributeError):
                    key = None
                scripted = self.statuses_for.get(key) if isinstance(key, str) else None
                if scripted:
                    return scripted.pop(0)
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def webhook_receiver(statuses: list[int] | None = None, *, drop_connections: int = 0,
                     extra_headers: dict[str, str] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(url="", statuses=list(statuses or []), drop_connections=drop_connections,
                        extra_headers=dict(extra_headers or {}))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                if receiver.drop_connections > 0:
                    receiver.drop_connections -= 1
                    receiver.requests.append(Received(dict(self.headers.items()), body))
                    self.close_connection = True
                    self.connection.close()
                    return
                receiver.requests.append(Received(dict(self.headers.items()), body))
            status = receiver.next_status(body)
            payload = b'{"ok": true}' if status < 400 else b'{"error": "scripted"}'
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
