"""Small XML helpers: escaped elements out, guarded parsing in."""

from __future__ import annotations

import functools
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from xml.sax.saxutils import escape

from local.oss.errors import OssError

MAX_XML_BODY = 2 * 1024 * 1024


def element(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


@functools.lru_cache(maxsize=8192)
def _iso_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def iso8601(epoch: float) -> str:
    return _iso_seconds(int(epoch))


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def parse_xml(body: bytes) -> ET.Element:
    """Parse a client XML body; anything malformed (or with a DTD) is MalformedXML."""
    if len(body) > MAX_XML_BODY or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise OssError(400, "MalformedXML")
    try:
        return ET.fromstring(body)  # noqa: S314 - DTDs refused above, so no entity expansion
    except ET.ParseError:
        raise OssError(400, "MalformedXML") from None


def child_text(node: ET.Element, name: str, default: str = "") -> str:
    found = node.find(name)
    if found is None or found.text is None:
        return default
    return found.text
