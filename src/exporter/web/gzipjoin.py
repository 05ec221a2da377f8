"""One gzip stream joined from parts compressed apart, without compressing anything again.

/metrics keeps each system's families compressed (exporter/web/exposition.py) and, when one
system's poll changes its families, compresses that system's again and nothing else. The
body is then the parts of every system, family by family, in one gzip member:

- each part is raw deflate that ends with a full flush: it ends on a byte boundary and
  refers to nothing before it, so parts can follow each other in any order (what pigz does
  to compress in parallel);
- the member's CRC-32 is combined from the parts' own (zlib's crc32_combine, which Python's
  zlib does not expose: a product of polynomials modulo the CRC's, 32 steps per part);
- the tail (the live families) ends the stream with the final block and the trailer.

One member, not several gzip members one after the other: Go's reader (Prometheus) reads
both, but other readers stop after the first member.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

LEVEL = 1  # the render already costs seconds; level 1 is ~10x on this text
# Bytes of text between two flushes of one part: each flush ends a chunk, the piece a scrape
# writes at once. Fewer, bigger chunks cost fewer writes; smaller ones less memory while
# inflating for a scraper without gzip.
CHUNK = 1 << 20
# A gzip header: deflate, no name, no time, fastest compression (level 1), OS unknown.
HEADER = bytes((0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 4, 255))
GZIP_WBITS = 16 + zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS

_POLY = 0xEDB88320  # CRC-32, bit-reversed, as zlib's crc32.c


def _multiply(a: int, b: int) -> int:
    """a × b modulo the CRC-32 polynomial (zlib's multmodp); ``a`` is never 0 here."""
    m, product = 1 << 31, 0
    for _ in range(32):
        if a & m:
            product ^= b
            if not a & (m - 1):
                break
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


# x^(2^k) modulo the polynomial, k = 0..31 (zlib's x2n_table).
_X2N = [1 << 30]
for _ in range(31):
    _X2N.append(_multiply(_X2N[-1], _X2N[-1]))


def _shift(length: int) -> int:
    """x^(8 × length) modulo the polynomial: what a CRC is multiplied by to be followed by
    ``length`` more bytes (zlib's x2nmodp(length, 3))."""
    power, k = 1 << 31, 3
    while length:
        if length & 1:
            power = _multiply(_X2N[k & 31], power)
        length >>= 1
        k += 1
    return power


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from CRC(A), CRC(B) and len(B), as zlib.crc32(A + B)."""
    return _multiply(_shift(length2), crc1) ^ crc2


@dataclass(frozen=True)
class Part:
    """Text compressed as raw deflate that can go anywhere in a stream (see above)."""

    chunks: tuple[bytes, ...]
    crc: int  # of the text
    length: int  # of the text, in bytes
    shift: int  # _shift(length): joining costs one multiplication per part


EMPTY = Part((), 0, 0, _shift(0))


class PartWriter:
    """Compresses text into Parts, one after the other, with one compressor."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, _RAW)
        self._chunks: list[bytes] = []
        self._pending: list[bytes] = []
        self._crc = 0
        self._length = 0
        self._since_flush = 0

    def write(self, text: bytes) -> None:
        self._pending.append(self._deflate.compress(text))
        self._crc = zlib.crc32(text, self._crc)
        self._length += len(text)
        self._since_flush += len(text)
        if self._since_flush >= CHUNK:
            # A sync flush within the part: the chunk so far can be inflated and sent.
            self._pending.append(self._deflate.flush(zlib.Z_SYNC_FLUSH))
            self._chunks.append(b"".join(self._pending))
            self._pending, self._since_flush = [], 0

    def part(self) -> Part:
        """What was written since the last part; the next one refers to nothing in it."""
        if not self._length:
            return EMPTY
        self._pending.append(self._deflate.flush(zlib.Z_FULL_FLUSH))
        self._chunks.append(b"".join(self._pending))
        part = Part(tuple(self._chunks), self._crc, self._length, _shift(self._length))
        self._chunks, self._pending = [], []
        self._crc = self._length = self._since_flush = 0
        return part


@dataclass(frozen=True)
class Joined:
    """Parts joined: a gzip stream without its end (the header and the parts' chunks)."""

    chunks: tuple[bytes, ...]
    crc: int
    length: int

    def finish(self, tail: bytes) -> bytes:
        """The end of the stream: ``tail`` compressed, the final block and the trailer."""
        deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, _RAW)
        end = deflate.compress(tail) + deflate.flush()
        crc = crc32_combine(self.crc, zlib.crc32(tail), len(tail))
        return end + struct.pack("<II", crc, (self.length + len(tail)) & 0xFFFFFFFF)


def join(parts: Iterable[Part]) -> Joined:
    chunks: list[bytes] = [HEADER]
    crc = length = 0
    for part in parts:
        if part.length:
            chunks.extend(part.chunks)
            crc = _multiply(part.shift, crc) ^ part.crc
            length += part.length
    return Joined(tuple(chunks), crc, length)
