"""CRC-64/ECMA-182 as OSS reports it in ``x-oss-hash-crc64ecma`` (decimal), and combining CRCs of parts.

The running CRC uses crcmod's C extension (crcmod-plus, the package alibabacloud-oss-v2 itself depends on);
``combine`` is zlib's ``crc32_combine`` method (GF(2) matrix powers, as in oss2's crc64_combine) so a
multipart object's CRC comes from its parts' CRCs without reading the data again.
"""

from __future__ import annotations

import functools

import crcmod  # type: ignore[import-untyped]
import crcmod.crcmod  # type: ignore[import-untyped]

_POLY = 0x142F0E1EBA9EA3693  # ECMA-182, reflected, init and final XOR all ones (CRC-64/XZ)
_POLY_REVERSED = 0xC96C5795D7870F42

update = crcmod.mkCrcFun(_POLY, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)
"""``update(data, crc=0) -> crc``: the CRC of ``data`` continued from ``crc`` (0 for a new stream)."""

USING_C_EXTENSION: bool = bool(getattr(crcmod.crcmod, "_usingExtension", False))


def _times(matrix: tuple[int, ...], vector: int) -> int:
    total = 0
    index = 0
    while vector:
        if vector & 1:
            total ^= matrix[index]
        vector >>= 1
        index += 1
    return total


def _square(matrix: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_times(matrix, matrix[n]) for n in range(64))


@functools.lru_cache(maxsize=1)
def _operators() -> tuple[tuple[int, ...], ...]:
    """The operator that appends 2**k zero bits, for k = 0..63 (computed once)."""
    one_bit = (_POLY_REVERSED, *(1 << n for n in range(63)))
    operators = [one_bit]
    for _ in range(66):
        operators.append(_square(operators[-1]))
    return tuple(operators)


def combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC of A+B from crc(A), crc(B) and len(B)."""
    if length2 <= 0:
        return crc1
    operators = _operators()
    bits = length2 * 8
    index = 0
    while bits:
        if bits & 1:
            crc1 = _times(operators[index], crc1)
        bits >>= 1
        index += 1
    return crc1 ^ crc2


def combine_all(parts: list[tuple[int, int]]) -> int:
    """CRC of the concatenation of parts given as (crc, length)."""
    crc = 0
    for part_crc, length in parts:
        crc = combine(crc, part_crc, length)
    return crc
