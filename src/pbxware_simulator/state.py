"""Deterministic simulated PBXware data.

Everything is drawn from `random.Random` instances seeded from the options (never the global
generator), so the same seed always yields the same systems and the same sequence of ticks.
States are immutable snapshots: `tick()` builds a new `SystemState` that shares the unchanged
tenants with the old one, so a test holding an old snapshot keeps a consistent truth and a
tick on 100,000 extensions stays cheap.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TypeVar

from . import health

T = TypeVar("T")

# The master tenant: a valid `server=` value that owns no extensions here. Real tenants start
# at 2 (reference 1.4).
MASTER_TENANT_ID = "1"
FIRST_TENANT_ID = 2
FIRST_EXTENSION_NUMBER = 1001

PACKAGES: dict[int, str] = {1: "Starter", 2: "Business", 3: "Enterprise"}

# route id -> (route code, country name); ids double as tenant country ids (reference 3.8).
ROUTES: dict[int, tuple[str, str]] = {
    869: ("1", "United States"),
    826: ("44", "United Kingdom"),
    276: ("49", "Germany"),
    191: ("385", "Croatia"),
}

# (ua_id, ua_name, ua_fullname, user agent string a registered phone reports)
_SIP_UAS: tuple[tuple[str, str, str, str], ...] = (
    ("50", "generic_sip", "Generic SIP", "Generic SIP Phone 1.0"),
    ("12", "yealink_t46s", "Yealink T46S", "Yealink SIP-T46S 66.86.0.15"),
    ("31", "polycom_vvx410", "Polycom VVX 410", "PolycomVVX-VVX_410-UA/6.4.3.5018"),
    ("77", "glocom", "gloCOM", "gloCOM 7.4.1"),
)
_IAX_UA = ("60", "generic_iax", "Generic IAX", "Generic IAX2 Client")

# A few non-ASCII names so JSON escaping and PHP byte lengths get exercised.
_FIRST_NAMES = (
    "Ana", "Ivan", "Marko", "Petra", "John", "Maria", "Željko", "Zoë", "Luka", "Sara",
    "Tom", "Mia", "Dario", "Nina", "Paul", "Ema",
)  # fmt: skip
_LAST_NAMES = (
    "Horvat", "Kovačić", "Smith", "Jones", "Babić", "Müller", "Novak", "Brown",
    "Perić", "García", "Taylor", "Jurić",
)  # fmt: skip
_COMPANIES = (
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "stark", "wayne",
    "tyrell", "cyberdyne",
)  # fmt: skip
_LOCATIONS = ("", "", "", "Head Office", "Branch", "Home Office")


@dataclass(frozen=True)
class ExtensionState:
    id: str
    number: str  # the `ext` field: what users dial
    name: str
    email: str
    protocol: str  # "sip" | "iax"
    status: str  # "enabled" | "disabled"
    online: bool  # disabled extensions are never online
    location: str
    ua_id: str
    ua_name: str
    ua_fullname: str
    user_agent: str  # what monitor.list shows as `ua` while online
    linenum: str
    user_location: str
    macaddress: str
    sn: str
    department: str
    ip: str  # shown by monitor.list only while online
    dnd: bool
    on_call: bool  # only ever true while online


@dataclass(frozen=True)
class TenantState:
    id: str
    name: str  # the tenant's name, trimmed
    api_name: str  # the name exactly as tenant.list sends it (some carry stray whitespace)
    code: str  # `tenantcode`, 3 digits
    package_id: int
    package: str
    ext_length: int
    country_id: int
    country_code: int
    extensions: dict[str, ExtensionState] = field(default_factory=dict)

    def online_count(self) -> int:
        return sum(1 for ext in self.extensions.values() if ext.online)


@dataclass(frozen=True)
class SystemState:
    name: str
    tick: int
    tenants: dict[str, TenantState]
    cpu: str  # the exact `inuse` strings the dashboard actions return right now
    memory: str
    disk: str
    seed: int = 0
    now: float = 0.0  # the simulator's clock (Unix time): start_time + tick * tick_seconds
    services: dict[str, str] = field(default_factory=health.initial_services)
    trunks: dict[str, health.TrunkState] = field(default_factory=dict)
    # license.info values that differ from health.LICENSE_INFO ("Unlimited", "N/A", …)
    license_info: dict[str, str] = field(default_factory=dict)

    def archiving_runs(self, start: date, end: date) -> list[dict[str, object]]:
        return health.archiving_runs(self, start, end)

    def online_count(self, tenant_id: str | None = None) -> int:
        """What dashboard.ext_online returns: for one tenant, or the whole system if None."""
        if tenant_id is None:
            return sum(t.online_count() for t in self.tenants.values())
        if tenant_id == MASTER_TENANT_ID:
            return 0
        return self.tenants[tenant_id].online_count()

    def extensions(self) -> list[ExtensionState]:
        return [ext for t in self.tenants.values() for ext in t.extensions.values()]


@dataclass
class _Load:
    """The unformatted CPU/memory/disk values behind the `inuse` strings."""

    cpu: float
    memory: float
    disk: float


def _format_load(load: _Load) -> tuple[str, str, str]:
    # Three different formats on purpose: the reference cannot rule any of them out
    # (reference 3.6), so the exporter must parse all three.
    return f"{load.cpu:.0f}", f"{load.memory:.1f}", f"{load.disk:.0f}%"


def _walk(
    rng: random.Random, value: float, lo: float, hi: float, step: tuple[float, float]
) -> float:
    # The minimum step exceeds the formatting resolution, so every tick visibly moves the
    # string; bouncing off the bounds instead of clamping keeps that true at the edges.
    delta = rng.uniform(*step) * rng.choice((-1.0, 1.0))
    moved = value + delta
    if not lo <= moved <= hi:
        moved = value - delta
    return moved


def tenant_code(index: int) -> str:
    """3-digit tenant codes "100", "101", ...; wraps to "000".."099" after "999".

    Past 1,000 tenants there are no 3-digit codes left, so the codes grow to 4 digits.
    """
    if index < 1000:
        return f"{(100 + index) % 1000:03d}"
    return str(1000 + index)


def _api_name(index: int, name: str) -> str:
    # Real tenant names sometimes carry stray whitespace (reference 3.1); make it
    # deterministic so even the default 3 tenants include one.
    if index % 4 == 1:
        return name + " "
    if index % 7 == 5:
        return " " + name + "\t"
    return name


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    # Same idea as rng.choice() but several times faster; building 100,000 extensions
    # makes half a million picks.
    return items[int(rng.random() * len(items))]


def _extension(
    rng: random.Random, ext_id: int, number: int, domain: str, subnet: int
) -> ExtensionState:
    first = _pick(rng, _FIRST_NAMES)
    last = _pick(rng, _LAST_NAMES)
    iax = rng.random() < 0.08
    ua_id, ua_name, ua_fullname, user_agent = _IAX_UA if iax else _pick(rng, _SIP_UAS)
    enabled = rng.random() >= 0.1
    online = enabled and rng.random() < 0.7
    has_mac = ua_name not in ("generic_sip", "generic_iax", "glocom")
    macaddress = f"805EC0{rng.getrandbits(24):06X}" if has_mac else ""
    department = _pick(rng, ("", "", "", "4", "4,6", "7"))
    return ExtensionState(
        id=str(ext_id),
        number=str(number),
        name=f"{first} {last}",
        email=f"{first.lower()}.{last.lower()}.{number}@{domain}",
        protocol="iax" if iax else "sip",
        status="enabled" if enabled else "disabled",
        online=online,
        location="remote" if rng.random() < 0.15 else "local",
        ua_id=ua_id,
        ua_name=ua_name,
        ua_fullname=ua_fullname,
        user_agent=user_agent,
        linenum="1",
        user_location=_pick(rng, _LOCATIONS),
        macaddress=macaddress,
        sn="",
        department=department,
        ip=f"10.{subnet // 256 % 256}.{subnet % 256}.{(ext_id % 250) + 2}",
        dnd=rng.random() < 0.05,
        on_call=online and rng.random() < 0.2,
    )


def build_system(
    name: str,
    *,
    seed: int,
    tenants: int,
    extensions_per_tenant: int,
    empty_tenants: int = 0,
    start_time: float = 0.0,
) -> tuple[SystemState, _Load]:
    # A string seed is hashed with SHA-512 by `random`, so it is stable across processes
    # (unlike hash()) and gives each system of one simulator different data.
    rng = random.Random(f"{seed}/{name}/build")
    route_ids = list(ROUTES)
    next_ext_id = 1
    tenant_map: dict[str, TenantState] = {}
    for index in range(tenants):
        tid = str(FIRST_TENANT_ID + index)
        code = tenant_code(index)
        company = rng.choice(_COMPANIES)
        clean_name = f"{company}-{code}.example.com"
        package_id = rng.choice(list(PACKAGES))
        country_id = route_ids[0] if rng.random() < 0.6 else rng.choice(route_ids)
        count = 0 if index >= tenants - empty_tenants else extensions_per_tenant
        exts: dict[str, ExtensionState] = {}
        for n in range(count):
            ext = _extension(rng, next_ext_id, FIRST_EXTENSION_NUMBER + n, clean_name, index)
            exts[ext.id] = ext
            next_ext_id += 1
        last_number = FIRST_EXTENSION_NUMBER + max(count - 1, 0)
        tenant_map[tid] = TenantState(
            id=tid,
            name=clean_name,
            api_name=_api_name(index, clean_name),
            code=code,
            package_id=package_id,
            package=PACKAGES[package_id],
            ext_length=len(str(last_number)),
            country_id=country_id,
            country_code=int(ROUTES[country_id][0]),
            extensions=exts,
        )
    load = _Load(cpu=rng.uniform(10, 60), memory=rng.uniform(30, 70), disk=rng.uniform(30, 70))
    cpu, memory, disk = _format_load(load)
    state = SystemState(
        name=name,
        tick=0,
        tenants=tenant_map,
        cpu=cpu,
        memory=memory,
        disk=disk,
        seed=seed,
        now=start_time,
        trunks=health.initial_trunks(seed, name),
    )
    return state, load


class SystemModel:
    """The mutable holder of one system's current snapshot; `tick()` advances it."""

    def __init__(
        self,
        name: str,
        *,
        seed: int,
        tenants: int,
        extensions_per_tenant: int,
        empty_tenants: int = 0,
        start_time: float = 0.0,
        tick_seconds: float = 60.0,
    ) -> None:
        self.state, self._load = build_system(
            name,
            seed=seed,
            tenants=tenants,
            extensions_per_tenant=extensions_per_tenant,
            empty_tenants=empty_tenants,
            start_time=start_time,
        )
        self._tick_seconds = tick_seconds
        self._rng = random.Random(f"{seed}/{name}/tick")
        # Only enabled extensions ever change presence; a fixed, ordered list keeps
        # rng.sample() deterministic.
        self._enabled: list[tuple[str, str]] = [
            (t.id, e.id)
            for t in self.state.tenants.values()
            for e in t.extensions.values()
            if e.status == "enabled"
        ]

    def tick(self) -> None:
        rng = self._rng
        old = self.state
        flips = max(1, round(len(self._enabled) * 0.05)) if self._enabled else 0
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for tid, eid in rng.sample(self._enabled, flips):
            by_tenant[tid].append(eid)
        tenants = dict(old.tenants)
        for tid, ext_ids in by_tenant.items():
            exts = dict(tenants[tid].extensions)
            for eid in ext_ids:
                ext = exts[eid]
                online = not ext.online
                exts[eid] = replace(ext, online=online, on_call=online and rng.random() < 0.2)
            tenants[tid] = replace(tenants[tid], extensions=exts)
        load = self._load
        load.cpu = _walk(rng, load.cpu, 2.0, 98.0, (1.5, 12.0))
        load.memory = _walk(rng, load.memory, 5.0, 95.0, (0.15, 4.0))
        load.disk = _walk(rng, load.disk, 20.0, 95.0, (1.5, 3.0))
        cpu, memory, disk = _format_load(load)
        self.state = replace(
            old,
            tick=old.tick + 1,
            tenants=tenants,
            cpu=cpu,
            memory=memory,
            disk=disk,
            now=old.now + self._tick_seconds,
        )

    def remove_tenant(self, tenant_id: str) -> None:
        """Delete a tenant, as `pbxware.tenant.delete` would (tests of vanishing tenants)."""
        tenants = dict(self.state.tenants)
        del tenants[tenant_id]
        self._enabled = [(tid, eid) for tid, eid in self._enabled if tid != tenant_id]
        self.state = replace(self.state, tick=self.state.tick + 1, tenants=tenants)

    def add_extension(self, tenant_id: str, number: str) -> ExtensionState:
        """A new enabled, offline SIP extension, as `pbxware.ext.add` would make it."""
        tenant = self.state.tenants[tenant_id]
        ext_id = str(max((int(e) for e in tenant.extensions), default=0) + 1000)
        ext = ExtensionState(
            id=ext_id,
            number=number,
            name=f"New {number}",
            email="",
            protocol="sip",
            status="enabled",
            online=False,
            location="",
            ua_id="",
            ua_name="",
            ua_fullname="",
            user_agent="",
            linenum="1",
            user_location="",
            macaddress="",
            sn="",
            department="",
            ip="",
            dnd=False,
            on_call=False,
        )
        tenants = dict(self.state.tenants)
        tenants[tenant_id] = replace(tenant, extensions={**tenant.extensions, ext_id: ext})
        self.state = replace(self.state, tick=self.state.tick + 1, tenants=tenants)
        return ext

    def set_service(self, service: str, status: str) -> None:
        self.state = replace(self.state, services={**self.state.services, service: status})

    def set_license_info(self, values: dict[str, str]) -> None:
        self.state = replace(self.state, license_info={**self.state.license_info, **values})

    def set_trunk_status(self, trunk_id: str, status: str) -> None:
        trunk = replace(self.state.trunks[trunk_id], status=status)
        self.state = replace(self.state, trunks={**self.state.trunks, trunk_id: trunk})
