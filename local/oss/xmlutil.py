"""Small XML helpers: escaped elements out, guarded parsing in."""

from __future__ import annotations

import functools
import re
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


# XML 1.0 forbids most C0 control characters, raw or as references (&#12;), yet OSS accepts them in
# DeleteMultipleObjects keys (the only way to delete such an object in one request). They are moved to
# the Supplementary Private Use Area (U+F0000 + code) before parsing and moved back in the parsed text.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_REFERENCES = re.compile(rb"&#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}));")
_PROTECTED_BASE = 0xF0000
_PROTECTED = re.compile("[\U000F0000-\U000F001F]")


def _is_forbidden_control(code: int) -> bool:
    return code < 0x20 and code not in (0x09, 0x0A, 0x0D)


def protect_controls(body: bytes) -> bytes:
    def reference(match: re.Match[bytes]) -> bytes:
        code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
        if _is_forbidden_control(code):
            return b"&#x%X;" % (_PROTECTED_BASE + code)
        return match.group(0)

    body = _CONTROL_REFERENCES.sub(reference, body)
    return _CONTROL_BYTES.sub(lambda m: b"&#x%X;" % (_PROTECTED_BASE + m.group(0)[0]), body)


def restore_controls(text: str) -> str:
    return _PROTECTED.sub(lambda m: chr(ord(m.group(0)) - _PROTECTED_BASE), text)


def child_text(node: ET.Element, name: str, default: str = "") -> str:
    found = node.find(name)
    if found is None or found.text is None:
        return default
    return found.text
