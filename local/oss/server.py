"""HTTP transport of the OSS emulator: stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive.

Parses addressing (path style, virtual host ``bucket.<host>``, CNAME), reads bodies in chunks
(Content-Length or chunked), and streams object bodies with ``socket.sendfile``.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO
from urllib.parse import unquote_plus, unquote_to_bytes

from local.oss.api import BodyReader, Call, OssApi, Reply
from local.oss.errors import OssError

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
DRAIN_LIMIT = 1024 * 1024


class OssHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: OssApi, *, cnames: dict[str, str],
                 virtual_host_bases: tuple[str, ...]) -> None:
        self.api = api
        self.cnames = {host.lower(): bucket for host, bucket in cnames.items()}
        self.virtual_host_bases = tuple(base.lower() for base in virtual_host_bases)
        super().__init__(address, OssRequestHandler)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        lingering_close(request)
        self.close_request(request)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # A client hanging up mid-request is routine; anything else is logged with its traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s dropped: %s", client_address[0], type(error).__name__)
            return
        log.exception("unexpected error serving %s", client_address[0])


def lingering_close(connection: socket.socket, seconds: float = 1.0) -> None:
    """Half-close, then read and drop what the client still sends (a body we refused) for a moment, so
    that closing does not reset the connection and destroy the answer before the client reads it."""
    try:
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and connection.recv(65536):
            pass
    except OSError:
        pass


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def wire_to_text(value: str) -> str:
    """A header value as the client meant it: http.server decodes header bytes as latin-1; OSS signs and
    stores the bytes sent (UTF-8 for x-oss-meta-*), so decode them as UTF-8, keeping any invalid byte as a
    surrogate escape so that it is signed and returned unchanged."""
    if value.isascii():
        return value
    return value.encode("latin-1", errors="replace").decode("utf-8", errors="surrogateescape")


def text_to_wire(value: str) -> str:
    """The inverse of wire_to_text: the string whose latin-1 encoding is the original bytes."""
    if value.isascii():
        return value
    return value.encode("utf-8", errors="surrogateescape").decode("latin-1")


def parse_query(raw: str) -> list[tuple[str, str]]:
    """Decode a raw query with form semantics (``+`` is a space), keeping order and bare names."""
    pairs = []
    for item in raw.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
    return pairs


class OssRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: OssHttpServer
    timeout = 300

    def version_string(self) -> str:
        return "AliyunOSS"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method and path only: the query string can carry signatures and security tokens.
        path = getattr(self, "path", "").split("?", 1)[0]
        log.debug("%s %s %s %s", self.client_address[0], getattr(self, "command", "-"), path, code)

    def log_message(self, format: str, *args: object) -> None:
        # http.server's own messages (bad request lines...) may quote the raw request line: keep it out.
        log.debug("%s http.server message suppressed", self.client_address[0])

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (malformed request line, oversized headers, HTTP/2 preface...) answer
        # with an OSS error document instead of an HTML page; the raw request line is never echoed. An
        # unknown HTTP version is the client's fault: 400, not 505.
        code = 400 if code == 505 else code
        self.close_connection = True
        request_id = uuid.uuid4().hex[:24].upper()
        error = OssError(code, "InternalError" if code == 500 else "InvalidRequest",
                         f"The request could not be parsed (HTTP {code}).")
        body = error.to_xml(request_id, "")
        if getattr(self, "request_version", "") not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # an unparsed request line: answer with a status line anyway
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/xml")
            self.send_header("x-oss-request-id", request_id)
            if getattr(self, "command", None) == "HEAD":
                self.send_header("x-oss-err", base64.b64encode(body).decode())
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_GET

    def __getattr__(self, name: str):  # unknown verbs (PATCH, TRACE...) answer 405, not 501 HTML
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    # -- request -----------------------------------------------------------------------------
    def _address(self, path: str) -> tuple[str | None, str | None, str]:
        host_header = (self.headers.get("Host") or "").strip().lower()
        if host_header.startswith("["):
            host = host_header[1:].split("]", 1)[0]
        else:
            host = host_header.rsplit(":", 1)[0] if ":" in host_header else host_header
        try:
            decoded = unquote_to_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            raise OssError(400, "InvalidObjectName", "The object name is not valid UTF-8.") from None
        remainder = decoded[1:] if decoded.startswith("/") else decoded
        bucket: str | None
        if host in self.server.cnames:
            bucket = self.server.cnames[host]
            return bucket, remainder or None, host_header
        if "." in host and not _is_ip(host):
            first, base = host.split(".", 1)
            if first and (base in self.server.virtual_host_bases or _is_ip(base) or base.startswith("oss-")):
                return first, remainder or None, host_header
        name, _, key = remainder.partition("/")
        bucket = name or None
        return bucket, (key or None) if bucket else None, host_header

    def _headers(self) -> dict[str, list[str]]:
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(wire_to_text(value))
        return headers

    def _body(self) -> BodyReader:
        length_header = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length: int | None = None
        if length_header is not None and not chunked:
            try:
                length = int(length_header)
            except ValueError:
                raise OssError(400, "InvalidArgument", "Content-Length is invalid.") from None
            if length < 0:
                raise OssError(400, "InvalidArgument", "Content-Length is invalid.")
        return BodyReader(lambda: self._read_chunks(length, chunked), length, chunked)

    def _read_chunks(self, length: int | None, chunked: bool) -> Iterator[bytes]:
        if chunked:
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise OssError(400, "InvalidArgument", "Malformed chunked body.") from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self._read_exactly(size)
                self.rfile.readline(16)
            return
        yield from self._read_exactly(length or 0)

    def _read_exactly(self, remaining: int) -> Iterator[bytes]:
        while remaining:
            data = self.rfile.read(min(remaining, READ_CHUNK))
            if not data:
                self.close_connection = True
                raise OssError(400, "IncompleteBody", "The request body is incomplete.")
            remaining -= len(data)
            yield data

    def _handle(self) -> None:
        request_id = uuid.uuid4().hex[:24].upper()
        host_header = self.headers.get("Host") or ""
        body: BodyReader | None = None
        try:
            target = self.path
            if "://" in target.split("?", 1)[0]:
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            raw_path, _, raw_query = target.partition("?")
            bucket, key, host_header = self._address(raw_path)
            try:
                query = parse_query(raw_query)
            except UnicodeDecodeError:
                raise OssError(400, "InvalidArgument", "The query string is not valid UTF-8.") from None
            body = self._body()
            call = Call(self.command, bucket, key, query, self._headers(), self.client_address[0],
                        host_header, request_id, body)
            reply = self.server.api.handle(call)
        except OssError as error:
            reply = self._error_reply(error, request_id, host_header)
        except Exception:
            log.exception("internal error in the OSS emulator (request %s)", request_id)
            reply = self._error_reply(OssError(500, "InternalError", "We encountered an internal error."),
                                      request_id, host_header)
        if body is not None and not body.exhausted:
            if self.command in ("GET", "HEAD", "DELETE", "OPTIONS"):
                # The operation ignores any body: answer now, without waiting for bytes that may never
                # come, and close the connection since the unread body would corrupt the next request.
                self.close_connection = True
            else:
                self._drain(body)
        self._send(reply, request_id)

    def _drain(self, body: BodyReader) -> None:
        """Read what the operation left unread so the connection can be reused; close it when large."""
        remaining = body.remaining()
        if remaining is not None and remaining <= DRAIN_LIMIT:
            try:
                for _ in body.chunks():
                    pass
            except OssError:
                self.close_connection = True
        else:
            self.close_connection = True

    def _error_reply(self, error: OssError, request_id: str, host: str) -> Reply:
        xml = error.to_xml(request_id, host)
        headers = {**error.headers, "Content-Type": "application/xml"}
        if self.command == "HEAD":
            headers["x-oss-err"] = base64.b64encode(xml).decode()
        return Reply(error.status, headers, xml)

    # -- response ----------------------------------------------------------------------------
    def _send(self, reply: Reply, request_id: str) -> None:
        try:
            self._send_head(reply, request_id)
            if self.command != "HEAD" and reply.status != 304:
                self._send_body(reply)
        finally:
            if reply.file is not None:
                reply.file[0].close()

    def _send_head(self, reply: Reply, request_id: str) -> None:
        self.send_response(reply.status)
        headers = dict(reply.headers)
        headers["x-oss-request-id"] = request_id
        headers["x-oss-server-time"] = "0"
        if reply.chunked:
            if self.command != "HEAD":
                headers["Transfer-Encoding"] = "chunked"
        elif reply.status != 304 and not (self.command == "HEAD" and "Content-Length" in headers):
            # A HEAD answer carries the object's length (HEAD ?objectMeta sets it without a body).
            headers["Content-Length"] = str(reply.file[2] if reply.file is not None else len(reply.body))
        if self.close_connection:
            headers["Connection"] = "close"
        for name, value in headers.items():
            self.send_header(name, text_to_wire(value))
        self.end_headers()

    def _send_body(self, reply: Reply) -> None:
        if reply.chunked:
            if reply.body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(reply.body), reply.body))
            self.wfile.write(b"0\r\n\r\n")
            return
        if reply.file is None:
            self.wfile.write(reply.body)
            return
        source, offset, count = reply.file
        # A socket with a timeout is non-blocking underneath: sendfile would then move one socket
        # buffer per syscall. Block for the body (large sendfile chunks), then restore the idle timeout.
        idle_timeout = self.connection.gettimeout()
        self.connection.settimeout(None)
        try:
            if reply.rate_limit:
                self._send_throttled(source, offset, count, reply.rate_limit)
            elif count and self.connection.sendfile(source, offset, count) != count:
                self.close_connection = True
        finally:
            self.connection.settimeout(idle_timeout)

    def _send_throttled(self, source: BinaryIO, offset: int, count: int, rate: int) -> None:
        """Send ``count`` bytes at about ``rate`` bytes per second (tenth-of-a-second slices)."""
        started = time.monotonic()
        sent = 0
        slice_size = max(1, rate // 10)
        while sent < count:
            step = min(slice_size, count - sent)
            if self.connection.sendfile(source, offset + sent, step) != step:
                self.close_connection = True
                return
            sent += step
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
