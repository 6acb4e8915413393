"""One parser for every integer that arrives as text (query strings, JSON strings, headers, env variables).

``str.isdigit()`` and ``int()`` accept far more than ASCII digits: ``"²".isdigit()`` is True (and ``int``
then raises), ``int("٣")`` is 3, ``int(" +1_0 ")`` is 10. A number written by a caller is ASCII digits only,
bounded in length before it is converted, so a parse can only answer a value or a ValueError.
"""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]+")


def parse_ascii_int(text: str, *, low: int = 0, high: int | None = None, max_digits: int = 18) -> int:
    """``text`` (surrounding spaces and tabs ignored) as an int in ``[low, high]``; ValueError otherwise.

    Only ASCII digits: no sign, ``_``, exponent or other script's digits."""
    if not isinstance(text, str):
        raise ValueError("expected digits 0-9")
    digits = text.strip(" \t")
    if not _ASCII_DIGITS.fullmatch(digits):
        raise ValueError("expected digits 0-9")
    if len(digits) > max_digits:
        raise ValueError(f"expected at most {max_digits} digits")
    number = int(digits)
    if number < low or (high is not None and number > high):
        raise ValueError(f"expected an integer from {low} to {high}" if high is not None
                         else f"expected an integer of at least {low}")
    return number


def ascii_int_or_none(text: object, *, max_digits: int = 18) -> int | None:
    """A non-negative ASCII-digit number, or None (for optional numbers from the wire: headers, events)."""
    if not isinstance(text, str):
        return None
    try:
        return parse_ascii_int(text, max_digits=max_digits)
    except ValueError:
        return None
