"""``x-oss-process`` parameters: parsed and checked, not rendered.

The emulator does not transform images; it parses the process string the way OSS documents it
(https://www.alibabacloud.com/help/en/oss/user-guide/img-parameters: ``image/<op>,<param>_<value>,.../<op>...``),
refuses what it cannot parse, and reports every other object an operation would read, so that the
caller can check that the object exists and that the requester may read it. Operations that name
another object:

- ``image/watermark,image_<url-safe base64 of the key>`` (the watermark picture, read from the same
  bucket; the decoded key may carry its own ``?x-oss-process=...`` for the watermark:
  https://www.alibabacloud.com/help/en/oss/user-guide/add-watermarks);
- ``style/<name>``: a bucket image style, which can itself hold a watermark; the emulator stores no
  styles, so every style name is refused (NoSuchStyle, as for an unknown style);
- ``...|sys/saveas,o_<base64 key>,b_<base64 bucket>`` writes another object; OSS accepts it only on a POST
  (ProcessObject), which the emulator does not implement, so it is refused here.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from local.oss.errors import OssError, invalid_argument

KINDS = frozenset({"image", "video", "doc", "style"})
_OPERATION = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
MAX_LENGTH = 4096
MAX_NESTING = 2


@dataclass(frozen=True)
class ProcessPlan:
    """What a process string does: its kind, its operations, and the other keys it reads."""

    kind: str
    operations: tuple[str, ...]
    reads: tuple[str, ...] = field(default=())


def _bad(message: str) -> OssError:
    return invalid_argument(message, ArgumentName="x-oss-process")


def decode_object_name(value: str) -> str:
    """URL-safe base64 (padding optional, as OSS examples omit it) -> UTF-8 key."""
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise _bad("The watermark object name is not valid URL-safe base64.") from None


def _watermark_reads(encoded: str, depth: int) -> list[str]:
    """The objects a watermark image parameter reads: the image, and what its own x-oss-process reads."""
    key, _, nested = decode_object_name(encoded).partition("?")
    if not key:
        raise _bad("The watermark object name is empty.")
    if not nested:
        return [key]
    if depth >= MAX_NESTING:
        raise _bad("Watermark processing is nested too deeply.")
    return [key, *parse(nested.removeprefix("x-oss-process="), depth=depth + 1).reads]


def parse(text: str, *, depth: int = 0) -> ProcessPlan:
    if not text or len(text) > MAX_LENGTH:
        raise _bad("The x-oss-process parameter is empty or too long.")
    if "|" in text:
        raise _bad("sys/saveas and other piped actions are only accepted by ProcessObject (POST), "
                   "which the emulator does not implement.")
    kind, _, rest = text.partition("/")
    if kind not in KINDS or not rest:
        raise _bad(f"Unsupported x-oss-process type {kind!r}.")
    if kind == "style":
        raise OssError(400, "NoSuchStyle", "The specified style does not exist (the emulator stores no styles).",
                       StyleName=rest)
    operations: list[str] = []
    reads: list[str] = []
    for step in rest.split("/"):
        name, *params = step.split(",")
        if not _OPERATION.match(name):
            raise _bad(f"Invalid x-oss-process operation {name!r}.")
        operations.append(name)
        if kind == "image" and name == "watermark":
            for param in params:
                if param.startswith("image_"):
                    reads.extend(_watermark_reads(param[len("image_"):], depth))
    return ProcessPlan(kind, tuple(operations), tuple(reads))
