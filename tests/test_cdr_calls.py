"""Calls, not legs: rows that share a ``Unique ID`` are the legs of one call (issue 16 §1).

A scripted PBX serves chosen rows, each visible from its own "written" time, so legs of one
call can be split over pages (page sizes down to 1) and over windows (a leg written after
the first window was polled). The counters must never count a call twice, never count an
answered call as unanswered, and never go down.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.config import CdrConfig, SystemConfig
from exporter.features.cdr import CdrPoller, CdrSnapshot
from exporter.features.cdr.records import DIRECTIONS, DISPOSITIONS
from exporter.pbxware import PbxwareError

T0 = 1_700_000_000
INTERVAL = 300
OVERLAP = 600
EXTENDED = ["Tenant", "From", "To", "Date/Time", "Total Duration", "Rating Duration",
            "Rating Cost", "Status", "ID", "Unique ID", "Recording Path", "Recording Available",
            "Location Type", "MOS"]  # fmt: skip


def leg(
    row_id: str,
    uid: str | None,
    at: int,
    status: str,
    duration: int = 30,
    billable: int = 0,
    *,
    caller: str = "0123456789",
    callee: str = "Sales (300)",
    cost: str = "0.00",
    mos: str = "",
    header: list[str] = EXTENDED,
) -> list[str]:
    cells = {
        "Tenant": "100", "From": caller, "To": callee, "Date/Time": str(at),
        "Total Duration": str(duration), "Rating Duration": str(billable), "Rating Cost": cost,
        "Status": status, "ID": row_id, "Unique ID": uid or "", "Recording Path": "",
        "Recording Available": "False", "Location Type": "Incoming", "MOS": mos,
    }  # fmt: skip
    return [cells[name] for name in header]


@dataclass
class ScriptedPbx:
    """pbxware.cdr.download over a fixed list of (row, written at) pairs, in UTC."""

    header: list[str] = field(default_factory=lambda: list(EXTENDED))
    rows: list[tuple[list[str], int]] = field(default_factory=list)
    now: int = T0
    requests: int = 0

    def add(self, row: list[str], written: int) -> None:
        self.rows.append((row, written))

    async def call(
        self,
        action: str,
        params: Any = None,
        *,
        raw: bool = False,
        request_timeout: float | None = None,
    ) -> Any:
        assert action == "pbxware.cdr.download" and params["timezone"] == "UTC"
        self.requests += 1

        def moment(day: str, clock: str) -> int:
            parsed = datetime.strptime(f"{day} {clock}", "%b-%d-%Y %H:%M:%S")
            return int(parsed.replace(tzinfo=UTC).timestamp())

        lo = moment(params["start"], params["starttime"])
        hi = moment(params["end"], params["endtime"])
        time_col = self.header.index("Date/Time")
        visible = [
            r for r, written in self.rows if written <= self.now and lo <= int(r[time_col]) <= hi
        ]
        limit, page = int(params["limit"]), int(params["page"])
        chunk = visible[(page - 1) * limit : page * limit]
        return {
            "success": "CDR download",
            "next_page": page * limit < len(visible),
            "limit": limit,
            "records": len(chunk),
            "header": list(self.header) if chunk else None,
            "csv": chunk,
        }

    async def close(self) -> None:
        return None


def poller(pbx: ScriptedPbx, page_size: int = 1000, **cdr: Any) -> CdrPoller:
    config = CdrConfig(enabled=True, interval=INTERVAL, overlap=OVERLAP, page_size=page_size)
    system = SystemConfig(
        name="pbx1", url="http://pbx.invalid", api_key="k" * 20, cdr=replace(config, **cdr)
    )
    return CdrPoller(system, pbx, tenants=lambda: ["2"], clock=lambda: pbx.now)  # type: ignore[arg-type]


def calls(snapshot: CdrSnapshot) -> dict[tuple[str, str], int]:
    return {k: v for k, v in snapshot.tenants[0].calls.items() if v}


async def run_rounds(pbx: ScriptedPbx, p: CdrPoller, rounds: int) -> list[CdrSnapshot]:
    out = []
    for _ in range(rounds):
        pbx.now += INTERVAL
        out.append(await p.poll_once())
    return out


def assert_monotonic(snapshots: list[CdrSnapshot]) -> None:
    """No counter ever goes down from one round to the next."""
    for before, after in itertools.pairwise(snapshots):
        for a, b in zip(before.tenants, after.tenants, strict=True):
            for key in a.calls:
                assert b.calls[key] >= a.calls[key], key
            assert b.records >= a.records
            for d in DIRECTIONS:
                assert b.duration[d] >= a.duration[d] and b.billable[d] >= a.billable[d]


@pytest.mark.parametrize("page_size", [1, 2, 3, 1000])
async def test_a_ring_group_answered_on_its_second_leg_is_one_answered_call(page_size):
    pbx = ScriptedPbx()
    at = T0 + 100
    end = at + 95
    # Two phones ring; the second answers after 5 s and talks 90 s. The first leg was
    # cancelled when the second answered. A third row: an ordinary call.
    pbx.add(leg("501", "1700000100.7", at, "Cancelled", 5, callee="Ana (201)"), end)
    pbx.add(leg("502", "1700000100.7", at, "Answered", 95, 90, callee="Bob (202)", mos="4.1"), end)
    pbx.add(leg("503", "1700000150.9", at + 50, "Answered", 20, 15, mos="0"), at + 70)
    p = poller(pbx, page_size=page_size)
    first = await p.poll_once()  # the origin
    snapshots = [first, *await run_rounds(pbx, p, 5)]
    assert_monotonic(snapshots)
    last = snapshots[-1].tenants[0]
    assert calls(snapshots[-1]) == {("inbound", "answered"): 2}
    assert last.records == 3  # rows, each once
    assert last.duration["inbound"] == 95 + 20 and last.billable["inbound"] == 90 + 15
    assert snapshots[-1].duplicates > 0  # the overlap returned the rows again


async def test_legs_split_over_two_windows_are_one_call_and_answered_stays_answered():
    pbx = ScriptedPbx()
    p = poller(pbx)
    await p.poll_once()
    at = T0 + 200
    # The unanswered leg is written at once; the answered leg of the same call only after
    # the next round (still within the overlap of the call's start).
    pbx.add(leg("601", "1700000200.1", at, "No Answer", 10, callee="Ana (201)"), at + 10)
    pbx.add(leg("602", "1700000200.1", at + 3, "Answered", 400, 380), at + 403)
    snapshots = await run_rounds(pbx, p, 6)
    assert_monotonic(snapshots)
    # Never counted as unanswered on the way.
    for snap in snapshots:
        assert snap.tenants[0].calls[("inbound", "no_answer")] == 0
    assert calls(snapshots[-1]) == {("inbound", "answered"): 1}
    assert snapshots[-1].tenants[0].records == 2
    assert snapshots[-1].tenants[0].duration["inbound"] == 400


async def test_a_call_is_held_back_until_the_overlap_has_passed_its_start():
    pbx = ScriptedPbx()
    p = poller(pbx)
    await p.poll_once()
    at = T0 + 10
    pbx.add(leg("701", "1700000010.1", at, "No Answer", 20), at + 20)
    pbx.now += INTERVAL  # now T0+300: the leg is fetched, the call waits
    held = await p.poll_once()
    assert held.tenants[0].records == 1 and held.tenants[0].pending_calls == 1
    assert sum(held.tenants[0].calls.values()) == 0
    pbx.now += INTERVAL  # T0+600: next window starts at T0+1 > at - OVERLAP; still held
    still = await p.poll_once()
    assert still.tenants[0].pending_calls == 1
    pbx.now += INTERVAL  # T0+900: the next request starts at T0+301 > at: released
    done = await p.poll_once()
    assert done.tenants[0].pending_calls == 0
    assert calls(done) == {("inbound", "no_answer"): 1}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["No Answer", "Busy"], "no_answer"),
        (["Busy", "Failed"], "busy"),
        (["Failed", "Congestion"], "failed"),
        (["Failed", "Whatever"], "failed"),
        (["Whatever", "Busy", "Answered"], "answered"),
        (["Cancelled", "Not Answered"], "no_answer"),
    ],
)
async def test_an_unanswered_call_takes_the_best_disposition_of_its_legs(statuses, expected):
    pbx = ScriptedPbx()
    p = poller(pbx)
    await p.poll_once()
    for i, status in enumerate(statuses):
        pbx.add(leg(f"80{i}", "1700000020.5", T0 + 20, status, 5), T0 + 30)
    snapshots = await run_rounds(pbx, p, 4)
    assert calls(snapshots[-1]) == {("inbound", expected): 1}


async def test_without_a_unique_id_column_every_row_is_a_call_counted_at_once():
    header = [c for c in EXTENDED if c != "Unique ID"]
    pbx = ScriptedPbx(header=header)
    p = poller(pbx)
    await p.poll_once()
    pbx.add(leg("901", None, T0 + 20, "No Answer", 5, header=header), T0 + 30)
    pbx.add(leg("902", None, T0 + 20, "Answered", 50, 45, header=header), T0 + 70)
    (snap,) = await run_rounds(pbx, p, 1)
    assert calls(snap) == {("inbound", "no_answer"): 1, ("inbound", "answered"): 1}
    assert snap.tenants[0].pending_calls == 0


async def test_rows_are_identified_by_id_and_without_an_id_by_their_content():
    pbx = ScriptedPbx()
    p = poller(pbx)
    await p.poll_once()
    # Two legs with the same Unique ID and otherwise equal cells but different row ids:
    # two rows (the old code dropped the second as a duplicate of the first).
    pbx.add(leg("1", "1700000040.2", T0 + 40, "No Answer", 5), T0 + 50)
    pbx.add(leg("2", "1700000040.2", T0 + 40, "No Answer", 5), T0 + 50)
    snaps = await run_rounds(pbx, p, 4)
    assert snaps[-1].tenants[0].records == 2
    assert calls(snaps[-1]) == {("inbound", "no_answer"): 1}

    header = [c for c in EXTENDED if c != "ID"]
    pbx2 = ScriptedPbx(header=header)
    p2 = poller(pbx2)
    await p2.poll_once()
    pbx2.add(leg("-", "1700000040.2", T0 + 40, "No Answer", 5, header=header), T0 + 50)
    pbx2.add(leg("-", "1700000040.2", T0 + 41, "Answered", 9, 4, header=header), T0 + 50)
    snaps = await run_rounds(pbx2, p2, 4)  # every round returns both rows again
    assert snaps[-1].tenants[0].records == 2 and snaps[-1].duplicates >= 2
    assert calls(snaps[-1]) == {("inbound", "answered"): 1}


async def test_a_failure_between_the_pages_of_a_call_counts_it_once():
    pbx = ScriptedPbx()
    p = poller(pbx, page_size=1)
    await p.poll_once()
    at = T0 + 60
    for i, status in enumerate(["No Answer", "Answered", "Busy"]):
        pbx.add(leg(f"11{i}", "1700000060.3", at, status, 70, 60 if i == 1 else 0), at + 70)
    calls_made = 0
    real = pbx.call

    async def flaky(action: str, params: Any = None, **kwargs: Any) -> Any:
        nonlocal calls_made
        calls_made += 1
        if params["page"] == "2" and calls_made < 4:
            raise PbxwareError(action, "timeout", "no answer")
        return await real(action, params, **kwargs)

    pbx.call = flaky  # type: ignore[method-assign]
    snapshots = await run_rounds(pbx, p, 5)
    assert_monotonic(snapshots)
    assert snapshots[0].errors["timeout"] == 1
    assert calls(snapshots[-1]) == {("inbound", "answered"): 1}
    assert snapshots[-1].tenants[0].records == 3
    assert snapshots[-1].tenants[0].duration["inbound"] == 70


async def test_a_leg_arriving_after_its_call_was_counted_counts_as_a_row_only():
    pbx = ScriptedPbx()
    p = poller(pbx)
    await p.poll_once()
    at = T0 + 30
    pbx.add(leg("1201", "1700000030.4", at, "No Answer", 5), at + 10)
    snaps = await run_rounds(pbx, p, 3)
    assert calls(snaps[-1]) == {("inbound", "no_answer"): 1}
    # A leg dated inside the next window but written far later than the overlap allows:
    # it is one more row, never a second call, and the call does not change (counters
    # never go down).
    pbx.add(leg("1202", "1700000030.4", pbx.now - 100, "Answered", 60, 50), pbx.now + 10)
    more = await run_rounds(pbx, p, 4)
    assert more[-1].tenants[0].records == 2
    assert calls(more[-1]) == {("inbound", "no_answer"): 1}
    assert more[-1].late_legs == 1


def test_dispositions_and_directions_are_the_documented_sets():
    assert DISPOSITIONS == ("answered", "no_answer", "busy", "failed", "unknown")
    assert DIRECTIONS == ("inbound", "outbound", "internal", "unknown")


async def test_an_unknown_status_counts_as_unknown_and_is_logged_once_per_value(leak_guard):
    pbx = ScriptedPbx()
    p = poller(pbx)
    await p.poll_once()
    statuses = ["Transferred", "Transferred", "Voicemail", "0123456789", "Answered"]
    for i, status in enumerate(statuses):
        pbx.add(leg(f"130{i}", None, T0 + 10 + i, status, 5), T0 + 20 + i)
    (snap,) = await run_rounds(pbx, p, 1)
    assert calls(snap) == {("inbound", "unknown"): 4, ("inbound", "answered"): 1}
    pbx.add(leg("1399", None, T0 + 400, "Transferred", 5), T0 + 410)
    await run_rounds(pbx, p, 1)
    lines = [line for line in leak_guard.getvalue().splitlines() if "cdr_status_unknown" in line]
    assert len(lines) == 3, lines
    assert any("Transferred" in line for line in lines) and any(
        "Voicemail" in line for line in lines
    )
    assert not any("0123456789" in line for line in lines)  # could be a number: not quoted
