"""Raw HTTP helpers for wire-level assertions (status, headers, OSS error XML)."""

from __future__ import annotations

import http.client
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def code(self) -> str | None:
        return self.error_field("Code")

    def error_field(self, name: str) -> str | None:
        if not self.body.startswith(b"<?xml"):
            return None
        node = ET.fromstring(self.body).find(name)
        return None if node is None else node.text


def send(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None,
         source_ip: str | None = None, connect_to: tuple[str, int] | None = None) -> Answer:
    """Send one request; ``connect_to`` overrides the TCP destination (for Host-header routing)."""
    parts = urlsplit(url)
    host, port = connect_to or (parts.hostname or "127.0.0.1", parts.port or 80)
    connection = http.client.HTTPConnection(host, port, timeout=30,
                                            source_address=(source_ip, 0) if source_ip else None)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        all_headers = {"Host": parts.netloc, **(headers or {})}
        connection.request(method, target or "/", body=body, headers=all_headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()
