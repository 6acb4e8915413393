"""``x-oss-process`` values callers may ask for: only operations whose parameters can name no other object.

OSS reads some processing inputs from the same bucket: ``image/watermark,image_<base64 of a key>`` overlays
another object (the caller's scope does not bound it), and ``style/<name>`` runs a stored style that may do
the same. So a process value is parsed (``<type>/<operation>[,<param>]*[/<operation>[,<param>]*]*``) and
every operation must be in URL_PROCESS_OPERATIONS; parameters are short runs of ``[A-Za-z0-9_.-]`` and never
an ``image_`` (object) parameter whatever the operation; anything else (styles, ``|`` pipelines such as
``sys/saveas``, unknown types or operations) is refused with a 400 naming the operation.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from shared.errors import InvalidParameter

MAX_PROCESS_CHARS = 512
_NAME_RE = re.compile(r"^[a-z][a-z-]{0,31}$")
_PARAM_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Parameters that name an object of the bucket (watermark images; the image of a composite).
_OBJECT_PARAMS = ("image_",)


class ProcessNotAllowed(InvalidParameter):
    code = "ProcessNotAllowed"


def check_process(value: str, allowed: Collection[str], where: str = "") -> str:
    """Return ``value`` if every operation in it is allowed; raise ProcessNotAllowed (400) otherwise."""
    if not allowed:
        raise ProcessNotAllowed(f"{where}process is not enabled on this deployment")
    if len(value) > MAX_PROCESS_CHARS:
        raise ProcessNotAllowed(f"{where}process must be at most {MAX_PROCESS_CHARS} characters")
    kind, _, chain = value.partition("/")
    kind = kind.lower()
    if not _NAME_RE.fullmatch(kind) or not chain:
        raise ProcessNotAllowed(f"{where}process must look like image/resize,w_100[/operation,...]")
    for step in chain.split("/"):
        operation, *params = step.split(",")
        name = f"{kind}/{operation.lower()}"
        if not _NAME_RE.fullmatch(operation.lower()):
            raise ProcessNotAllowed(f"{where}process has an unreadable operation {step[:40]!r}")
        if name not in allowed:
            raise ProcessNotAllowed(f"{where}process operation {name!r} is not allowed; allowed: "
                                    + ", ".join(sorted(allowed)))
        for param in params:
            if not _PARAM_RE.fullmatch(param):
                raise ProcessNotAllowed(f"{where}process parameter {param[:40]!r} of {name} is not allowed "
                                        "(letters, digits, '_', '.', '-')")
            if param.lower().startswith(_OBJECT_PARAMS):
                raise ProcessNotAllowed(f"{where}process parameter {param[:40]!r} of {name} names an object; "
                                        "not allowed")
    return value
