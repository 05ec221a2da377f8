"""A fast decoder for PHP's serialize() output, straight into json_encode's shapes.

phpserialize (the reference implementation we test against) reads its input one byte at a
time through a file object and converts arrays in a second pass; on a carrier-sized
extension list that is ~20x slower than json.loads. This decoder walks the bytes with
``bytes.index`` and slicing (the lengths in the format let it jump over strings) and builds
the final shapes in one pass: a PHP array with keys 0..n-1 becomes a list, any other array
a dict with string keys, an empty one ``[]`` (what PHP's json_encode does).

It accepts exactly one value; trailing bytes, objects (``O:``), references and anything
malformed raise ValueError.

Even so, pure Python spends ~2.5 µs per token, about 7x json.loads. ``_phpdecode.c`` is the
same decoder in C (a little faster than json.loads); setup.py builds it where a compiler is
there, and ``loads`` uses it then, as PyYAML does with its CLoader. It is stricter about
digits (no signs, spaces or underscores in lengths), which valid serialize() output never has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

c_loads: Callable[[bytes], Any] | None
try:
    from ._phpdecode import loads as c_loads
except ImportError:  # built without a compiler: the pure-Python decoder below
    c_loads = None

_S, _I, _A, _B, _D, _N = (ord(c) for c in "siabdN")
_QUOTE, _SEMI, _OPEN, _CLOSE = ord('"'), ord(";"), ord("{"), ord("}")


def loads(data: bytes) -> Any:
    """One serialize()d value in json_encode's shapes; ValueError if it is not one."""
    if c_loads is None:
        return pure_loads(data)
    try:
        return c_loads(data)
    except ValueError as exc:
        raise ValueError(f"not PHP serialize() output: {exc}") from None


def pure_loads(data: bytes) -> Any:
    try:
        value, pos = _value(data, 0)
    except (IndexError, ValueError) as exc:
        raise ValueError(f"not PHP serialize() output: {exc}") from None
    if pos != len(data):
        raise ValueError("trailing data after the serialized value")
    return value


def _value(data: bytes, pos: int) -> tuple[Any, int]:
    kind = data[pos]
    if data[pos + 1] != 58 and kind != _N:  # ":"
        raise ValueError(f"bad token at {pos}")
    if kind == _S:
        colon = data.index(b":", pos + 2)
        start = colon + 2
        end = start + int(data[pos + 2 : colon])
        if data[colon + 1] != _QUOTE or data[end] != _QUOTE or data[end + 1] != _SEMI:
            raise ValueError(f"bad string at {pos}")
        return data[start:end].decode("utf-8"), end + 2
    if kind == _I:
        semi = data.index(b";", pos + 2)
        return int(data[pos + 2 : semi]), semi + 1
    if kind == _A:
        return _array(data, pos)
    if kind == _B:
        flag = data[pos + 2 : pos + 4]
        if flag not in (b"0;", b"1;"):
            raise ValueError(f"bad boolean at {pos}")
        return flag == b"1;", pos + 4
    if kind == _D:
        semi = data.index(b";", pos + 2)
        return float(data[pos + 2 : semi]), semi + 1
    if kind == _N and data[pos + 1] == _SEMI:
        return None, pos + 2
    raise ValueError(f"unsupported type {chr(kind)!r} at {pos}")


def _array(data: bytes, pos: int) -> tuple[Any, int]:
    colon = data.index(b":", pos + 2)
    count = int(data[pos + 2 : colon])
    if data[colon + 1] != _OPEN or count < 0:
        raise ValueError(f"bad array at {pos}")
    pos = colon + 2
    keys: list[Any] = []
    values: list[Any] = []
    key: str | int
    for _ in range(count):
        # Keys are strings or integers; inlined, as they are half of all tokens.
        kind = data[pos]
        if kind == _S:
            colon = data.index(b":", pos + 2)
            start = colon + 2
            end = start + int(data[pos + 2 : colon])
            if data[colon + 1] != _QUOTE or data[end] != _QUOTE or data[end + 1] != _SEMI:
                raise ValueError(f"bad string at {pos}")
            key, pos = data[start:end].decode("utf-8"), end + 2
        elif kind == _I:
            semi = data.index(b";", pos + 2)
            key, pos = int(data[pos + 2 : semi]), semi + 1
        else:
            raise ValueError(f"bad array key at {pos}")
        if data[pos] == _S:  # string values dominate too: inlined as well
            colon = data.index(b":", pos + 2)
            start = colon + 2
            end = start + int(data[pos + 2 : colon])
            if data[colon + 1] != _QUOTE or data[end] != _QUOTE or data[end + 1] != _SEMI:
                raise ValueError(f"bad string at {pos}")
            value, pos = data[start:end].decode("utf-8"), end + 2
        else:
            value, pos = _value(data, pos)
        keys.append(key)
        values.append(value)
    if data[pos] != _CLOSE:
        raise ValueError(f"array at {pos} longer than its count")
    pos += 1
    if not keys:
        return [], pos
    if keys == list(range(count)):
        return values, pos
    return {str(k): v for k, v in zip(keys, values, strict=True)}, pos
