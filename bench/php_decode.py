"""PHP vs JSON decoding of a carrier-sized extension list (issue 8).

Builds the pbxware.ext.list answer of 1,000 tenants x 100 extensions with the simulator's
own encoder (json_encode-like JSON and PHP serialize()), then times json.loads against the
exporter's PHP decoders: the C one the daemon uses when it is built, and the pure-Python
fallback. Prints the figures; run: python bench/php_decode.py
"""

from __future__ import annotations

import argparse
import json
import time

from common import machine, package

from exporter.pbxware import phpdecode
from pbxware_simulator.api import Context, encode, ext_list
from pbxware_simulator.state import build_system


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(tenants: int, extensions: int, repeat: int) -> None:
    state, _ = build_system("bench", seed=1, tenants=tenants, extensions_per_tenant=extensions)
    # ext.list is per tenant; the whole system's list is every tenant's answer merged.
    payload = {}
    for tid in state.tenants:
        payload.update(ext_list(Context(state, {"server": tid}, False)))
    as_json, as_php = encode(payload, "json"), encode(payload, "php")
    expected = json.loads(as_json)
    decoders = {"C": phpdecode.c_loads, "pure Python": phpdecode.pure_loads}
    if decoders["C"] is None:
        print("the C decoder is not built (no compiler?): pip install -e . with gcc")
        del decoders["C"]
    for decode in decoders.values():
        assert decode(as_php) == expected
    t_json = best_of(repeat, lambda: json.loads(as_json))
    print(f"machine: {machine()}")
    print(package())
    print(
        f"extension list: {len(payload)} extensions; JSON {len(as_json) / 1e6:.1f} MB, "
        f"PHP {len(as_php) / 1e6:.1f} MB"
    )
    print(f"json.loads: {t_json * 1000:.0f} ms")
    for name, decode in decoders.items():
        took = best_of(repeat, lambda decode=decode: decode(as_php))
        print(f"PHP decode, {name}: {took * 1000:.0f} ms; ratio {took / t_json:.2f} (target <= 3)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--extensions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    main(args.tenants, args.extensions, args.repeat)
