"""Content-Disposition values (RFC 6266) with RFC 5987 filenames.

    attachment; filename="report_2024.pdf"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%202024.pdf

`filename` is a quoted ASCII fallback for old clients; `filename*` carries the exact UTF-8 name
and wins in every current browser (RFC 6266 section 4.3). Both are always sent, so one code
path serves ASCII and non-ASCII names alike.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal
from urllib.parse import quote

from shared.keys import InvalidOption

DispositionType = Literal["inline", "attachment"]
MAX_FILENAME_CHARS = 255

# RFC 5987 attr-char minus the ALPHA/DIGIT that quote() keeps anyway, and minus `&`: the value travels
# in `response-content-disposition`, and V1 signs sub-resource values raw, joined with `&` (a raw `&`
# would let the signature cover a smuggled extra sub-resource). `%26` decodes to the same name.
_ATTR_CHAR_SAFE = "!#$+-.^_`|~"
# Characters that may not appear in the quoted fallback: quote, backslash, controls, path separators /
# percent (some clients decode or split on them), and `&` (see above).
_FALLBACK_UNSAFE = re.compile(r'["\\/%&\x00-\x1f\x7f]')
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def content_disposition(filename: str | None = None, disposition: str = "attachment") -> str:
    """Build a Content-Disposition value; `filename` None or empty gives just the type."""
    if disposition not in ("inline", "attachment"):
        raise InvalidOption("disposition must be 'inline' or 'attachment'")
    if not filename:
        return disposition
    name = _clean_filename(filename)
    return f"{disposition}; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHAR_SAFE)}"


def filename_from_key(key: str) -> str:
    """Last path segment of an object key (`a/b/report.pdf` -> `report.pdf`)."""
    return key.rstrip("/").rsplit("/", 1)[-1]


def ascii_fallback(name: str) -> str:
    """Printable ASCII approximation: accents stripped (é -> e), anything else becomes `_`."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(
        char if char.isascii() else "_" for char in decomposed if not unicodedata.combining(char)
    )
    return _FALLBACK_UNSAFE.sub("_", ascii_only) or "download"


def _clean_filename(filename: str) -> str:
    if not isinstance(filename, str):
        raise InvalidOption("filename must be a string")
    try:
        filename.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOption("filename is not valid UTF-8") from None
    if _CONTROL_CHARS.search(filename):
        raise InvalidOption("filename must not contain control characters")
    # A filename is a name, never a path: keep only the last segment.
    name = filename.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", ".."):
        raise InvalidOption("filename must name a file")
    if len(name) > MAX_FILENAME_CHARS:
        raise InvalidOption(f"filename must be at most {MAX_FILENAME_CHARS} characters")
    return name
