"""The pure parts of CDR polling: windows, headers, rows, classification, de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from exporter.features.cdr.counters import TenantCounters
from exporter.features.cdr.page import parse_page
from exporter.features.cdr.records import (
    CdrRow,
    HeaderError,
    RowError,
    direction,
    disposition,
    map_header,
    read_row,
    row_key,
    row_time,
)
from exporter.features.cdr.seen import SeenIds
from exporter.features.cdr.window import Window, chunks, request_params
from exporter.pbxware import PbxwareError

CURRENT = ["Tenant", "From", "To", "Date/Time", "Total Duration", "Rating Duration",
           "Rating Cost", "Status", "ID", "Recording Path", "Recording Available", "Location Type"]  # fmt: skip
EXTENDED = ["Unique ID", "MOS", "Location Type", "Status", "To", "From", "Date/Time",
            "Total Duration", "ID", "Recording Path", "Rating Duration"]  # fmt: skip


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


# --- windows --------------------------------------------------------------------------------


def test_request_params_use_english_months_and_the_zone():
    window = Window(utc(2024, 3, 5, 8, 0, 0), utc(2024, 3, 5, 8, 4, 59))
    assert request_params(window, ZoneInfo("UTC")) == {
        "start": "Mar-05-2024",
        "end": "Mar-05-2024",
        "starttime": "08:00:00",
        "endtime": "08:04:59",
        "timezone": "UTC",
    }
    berlin = request_params(window, ZoneInfo("Europe/Berlin"))
    assert (berlin["starttime"], berlin["endtime"], berlin["timezone"]) == (
        "09:00:00",
        "09:04:59",
        "Europe/Berlin",
    )


def test_chunks_stay_inside_one_local_day_and_one_hour_and_leave_no_gap():
    tz = ZoneInfo("Europe/Berlin")
    # 22:30 local on Mar 30 to 01:10 local on Apr 1 (a DST change in between).
    start = int(datetime(2024, 3, 30, 22, 30, tzinfo=tz).timestamp())
    end = int(datetime(2024, 4, 1, 1, 10, tzinfo=tz).timestamp())
    parts = list(chunks(Window(start, end), tz))
    assert parts[0].start == start and parts[-1].end == end
    for a, b in pairwise(parts):
        assert b.start == a.end + 1
    for part in parts:
        assert part.end - part.start < 3600
        params = request_params(part, tz)
        assert params["start"] == params["end"], params  # never across local midnight
    days = {request_params(p, tz)["start"] for p in parts}
    assert days == {"Mar-30-2024", "Mar-31-2024", "Apr-01-2024"}
    # The DST day has 23 hours: 1.5 h + 23 h + 1 h 10 min in hourly pieces.
    assert len(parts) == 2 + 23 + 2


def test_a_window_is_inclusive_and_never_reversed():
    assert 10 in Window(10, 10) and 11 not in Window(10, 10)
    with pytest.raises(ValueError):
        Window(11, 10)


# --- headers and pages ------------------------------------------------------------------------


def test_columns_are_found_by_name_in_any_order():
    cols = map_header(EXTENDED)
    assert (cols.call_id, cols.row_id) == (0, 8)
    assert (cols.time, cols.duration, cols.status) == (6, 7, 3)
    assert (cols.caller, cols.callee, cols.billable, cols.recording, cols.location) == (
        5,
        4,
        10,
        9,
        2,
    )
    legacy = map_header(CURRENT[:10])
    assert (legacy.row_id, legacy.call_id, legacy.location, legacy.width) == (8, None, None, 10)
    # Spelling of the names does not matter: case, spacing, underscores.
    assert map_header(["date_time".replace("_", "/"), "TOTAL  DURATION", "status", "id"]).width == 4


@pytest.mark.parametrize("missing", ["Date/Time", "Total Duration", "Status"])
def test_a_header_without_a_required_column_is_refused(missing):
    with pytest.raises(HeaderError, match="lacks"):
        map_header([c for c in CURRENT if c != missing])


def test_a_header_without_any_id_is_read():
    # Rows are then told apart by their content, and each row is a call of its own.
    cols = map_header([c for c in CURRENT if c != "ID"])
    assert cols.row_id is None and cols.call_id is None


def test_page_shapes():
    empty = parse_page({"success": "x", "next_page": False, "limit": 16, "records": 0,
                        "header": None, "csv": []}, 16)  # fmt: skip
    assert empty.columns is None and empty.rows == [] and not empty.next_page
    page = parse_page({"next_page": True, "header": CURRENT, "csv": [["x"] * 12]}, 1000)
    assert page.next_page and page.columns is not None and len(page.rows) == 1
    # next_page missing: a full page is assumed to have a successor.
    assert parse_page({"header": CURRENT, "csv": [[]] * 5}, 5).next_page
    assert not parse_page({"header": CURRENT, "csv": [[]] * 4}, 5).next_page
    assert parse_page({"header": CURRENT, "csv": [], "next_page": "false"}, 5).next_page is False
    for bad in (
        [],
        {"header": None, "csv": [["a"]]},
        {"header": "Tenant,From", "csv": []},
        {"header": CURRENT, "csv": {"0": []}},
        {"header": CURRENT, "csv": [], "next_page": "maybe"},
        {"header": ["From", "To"], "csv": []},
    ):
        with pytest.raises(PbxwareError) as info:
            parse_page(bad, 16)
        assert info.value.reason == "decode" and info.value.action == "pbxware.cdr.download"


# --- rows ---------------------------------------------------------------------------------------


def row(**cells: object) -> list[object]:
    values = {
        "Tenant": "100", "From": "Phil (2001)", "To": "0123456789", "Date/Time": "1711965600",
        "Total Duration": "65", "Rating Duration": "60", "Rating Cost": "0.02",
        "Status": "Answered", "ID": "1711965600.1234", "Recording Path": "/x/y.wav",
        "Recording Available": "True", "Location Type": "National",
    }  # fmt: skip
    values.update(
        {k.replace("_", " ").replace("Date Time", "Date/Time"): v for k, v in cells.items()}
    )
    return [values[name] for name in CURRENT]


def test_a_good_row():
    cols = map_header(CURRENT)
    assert read_row(row(), cols) == CdrRow(
        key="\x001711965600.1234",
        call=None,
        timestamp=1711965600,
        direction="outbound",
        disposition="answered",
        duration=65,
        billable=60,
        recorded=True,
        cost=0.02,
    )
    # Numbers instead of strings, null cells, durations as h:mm:ss are all read.
    tolerant = row(Total_Duration=65, Rating_Duration=None, Recording_Path=None)
    tolerant[3] = 1711965600
    tolerant[10] = "False"  # Recording Available
    got = read_row(tolerant, cols)
    assert (got.duration, got.billable, got.recorded, got.timestamp) == (65, 0, False, 1711965600)
    assert read_row(row(Total_Duration="0:01:05"), cols).duration == 65


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (row()[:-1], "cells"),
        (row(Date_Time="2024-04-01 10:00"), "Unix seconds"),
        (row(Total_Duration="n/a"), "Total Duration"),
        (row(Total_Duration="-5"), "Total Duration"),
        (row(Rating_Duration="nan"), "Rating Duration"),
        (row(Total_Duration=str(10**9)), "longer"),
        (row(From={"name": "x"}), "From"),
        (row(Status=["Answered"]), "Status"),
        (row(To=True), "To"),
        ("not a row", "list"),
    ],
)
def test_bad_rows_are_refused_without_quoting_values(bad, problem):
    cols = map_header(CURRENT)
    with pytest.raises(RowError, match=problem) as info:
        read_row(bad, cols)
    for secret in ("Phil", "2001", "0123456789", "/x/y.wav"):
        assert secret not in str(info.value)


def test_row_time_and_row_keys():
    cols = map_header(CURRENT)
    assert row_time(row(), cols) == 1711965600
    assert row_time(row(Date_Time="soon"), cols) is None and row_time([], cols) is None
    assert row_key(row(Total_Duration="n/a"), cols) == "\x001711965600.1234"
    no_id = row(ID="")
    digest = row_key(no_id, cols)
    assert digest == row_key(list(no_id), cols) and "Phil" not in digest
    assert digest != row_key(row(ID="", From="Other (2002)"), cols)
    # An id too long to be one: the row's content identifies it.
    assert row_key(row(ID="x" * 200), cols).startswith("\x00#")
    assert read_row(row(ID=""), cols).key == digest


def test_extra_trailing_cells_are_read_and_short_rows_are_not():
    cols = map_header(CURRENT)
    assert read_row([*row(), "new column", "another"], cols) == read_row(row(), cols)
    with pytest.raises(RowError, match="cells"):
        read_row(row()[:-1], cols)


def test_recording_available_wins_over_the_path():
    cols = map_header(CURRENT)
    assert not read_row(row(Recording_Available="False"), cols).recorded  # a path, but gone
    assert read_row(row(Recording_Path="", Recording_Available="True"), cols).recorded
    legacy = map_header(CURRENT[:10])  # no Recording Available: the path decides
    assert read_row(row()[:10], legacy).recorded
    assert not read_row(row(Recording_Path="")[:10], legacy).recorded


@pytest.mark.parametrize(
    ("cost", "mos", "want_cost", "want_mos"),
    [
        ("0.02", "4.1", 0.02, 4.1), ("", "", None, None), ("1,50", "0", 1.5, None),
        ("-0.40", "5.5", None, None), ("n/a", "NaN", None, None), ({"x": 1}, ["4"], None, None),
    ],
)  # fmt: skip
def test_cost_and_mos_are_read_cell_by_cell(cost, mos, want_cost, want_mos):
    header = [*CURRENT, "MOS"]
    cols = map_header(header)
    got = read_row([*row(Rating_Cost=cost), mos], cols)  # a bad cost or MOS keeps the row
    assert (got.cost, got.mos) == (want_cost, want_mos)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Answered", "answered"), ("ANSWERED", "answered"), ("Unanswered", "no_answer"),
        ("No Answer", "no_answer"), ("NO_ANSWER", "no_answer"), ("Busy", "busy"),
        ("Failed", "failed"), ("Congestion", "failed"), ("", "unknown"), ("Voicemail", "unknown"),
        ("Not Answered", "no_answer"), ("Cancelled", "no_answer"), ("CANCELED", "no_answer"),
    ],
)  # fmt: skip
def test_disposition(status, expected):
    assert disposition(status) == expected


@pytest.mark.parametrize(
    ("location", "caller", "callee", "expected"),
    [
        ("Incoming", "0123", "Sales (300)", "inbound"),
        ("Outgoing", "Phil (2001)", "0123", "outbound"),
        ("internal", "0123", "0456", "internal"),  # an explicit word wins over the parties
        ("National", "Phil (2001)", "0123", "outbound"),
        ("Local", "0123", "Phil (2001)", "inbound"),
        ("", "Phil (2001)", "Ana (2002)", "internal"),
        ("", "0123", "0456", "unknown"),
        ("Mobile", "Anonymous", "0456", "unknown"),
    ],
)
def test_direction(location, caller, callee, expected):
    assert direction(location, caller, callee) == expected


# --- counting and de-duplication ----------------------------------------------------------------


def test_counters_count_answered_durations_only():
    counters = TenantCounters()
    base = {"call": None, "timestamp": 100, "duration": 70, "billable": 60, "recorded": False}
    counters.count(CdrRow(key="a", direction="inbound", disposition="answered", **base))
    counters.count(CdrRow(key="b", direction="inbound", disposition="busy", **base))
    counters.count(
        CdrRow(key="c", direction="outbound", disposition="answered", **{**base, "recorded": True})
    )
    totals = counters.freeze("2", 500)
    assert totals.records == 3 and totals.recordings == 1
    assert totals.calls[("inbound", "answered")] == 1 and totals.calls[("inbound", "busy")] == 1
    assert totals.duration["inbound"] == 70 and totals.billable == {
        "inbound": 60, "outbound": 60, "internal": 0, "unknown": 0,
    }  # fmt: skip
    assert len(totals.calls) == 20 and totals.polled_until == 500


def test_seen_ids_forget_what_no_request_can_return():
    seen = SeenIds()
    assert seen.add("a", 100) and seen.add("b", 200) and not seen.add("a", 100)
    seen.forget_before(150)
    assert "a" not in seen and "b" in seen and len(seen) == 1
    seen.forget_before(150)  # nothing older: no change
    seen.forget_before(1000)
    assert len(seen) == 0


# --- configuration ------------------------------------------------------------------------------


def test_cdr_timeout_is_its_own_setting(tmp_path):
    from exporter.config import ConfigError, load_config

    def load(cdr: str) -> float:
        path = tmp_path / "config.yml"
        path.write_text(
            f"systems:\n- {{name: a, url: 'http://x', api_key: k, timeout: 5s, cdr: {cdr}}}\n"
        )
        config = load_config(path)
        assert config.systems[0].timeout == 5.0  # the poll timeout is untouched
        return config.systems[0].cdr.timeout

    assert load("{enabled: true}") == 60.0  # 60 s per page, as clients in the evidence allow
    assert load("{enabled: true, timeout: 2m}") == 120.0
    for bad in ("0s", "soon"):
        with pytest.raises(ConfigError, match=r"cdr\.timeout"):
            load(f"{{timeout: {bad}}}")


# --- a PBX that ignores `timezone` ------------------------------------------------------------


def test_zone_guess_finds_a_whole_or_half_hour_shift_from_two_requests():
    from exporter.features.cdr.zone import ZoneGuess

    guess = ZoneGuess()
    # Asked 10:00-10:59:59 UTC; a PBX 5:30 ahead (Kolkata) answered 04:30-05:29:59 UTC.
    shift = 19800
    start = utc(2024, 3, 5, 10, 0, 0)
    assert (
        guess.observe(Window(start, start + 3599), start - shift + 60, start - shift + 3000) is None
    )
    start += 3600
    assert (
        guess.observe(Window(start, start + 3599), start - shift + 5, start - shift + 3500) == shift
    )
    assert guess.shift == shift


def test_zone_guess_ignores_a_few_stray_rows_and_inconsistent_evidence():
    from exporter.features.cdr.zone import ZoneGuess

    guess = ZoneGuess()
    start = utc(2024, 3, 5, 10, 0, 0)
    # Rows inside the window: nothing to learn.
    assert guess.observe(Window(start, start + 299), start + 10, start + 200) is None
    # Off by a few seconds (no whole half hour fits both ends): no evidence.
    assert guess.observe(Window(start, start + 299), start - 7, start + 290) is None
    # Two requests that disagree: no shift.
    assert guess.observe(Window(start, start + 299), start - 3600, start - 3400) is None
    assert guess.observe(Window(start, start + 299), start + 7200, start + 7300) is None
    assert guess.shift == 0
