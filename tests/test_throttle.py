"""The failure throttle and the log limiter on their own (exporter/web/throttle.py), used by
the admin API and basic auth alike."""

from __future__ import annotations

import pytest

from exporter.web.throttle import FailureThrottle, LogLimiter, client_key, retry_after
from tests.admin_util import FakeClock


def test_the_limit_blocks_for_the_window():
    clock = FakeClock()
    throttle = FailureThrottle(limit=3, window=60, clock=clock)
    assert throttle.failure("a") is None
    assert throttle.failure("a") is None
    assert throttle.blocked("a") is None
    assert throttle.failure("a") == 60  # the third failure starts the block
    assert throttle.blocked("a") == 60
    clock.now += 59.5
    assert throttle.blocked("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert throttle.blocked("a") is None
    assert throttle.blocked("b") is None  # per client


def test_the_window_slides():
    clock = FakeClock()
    throttle = FailureThrottle(limit=3, window=60, clock=clock)
    for _ in range(2):
        assert throttle.failure("a") is None
        clock.now += 40
    # 80 s after the first failure only the second one is still in the window.
    assert throttle.failure("a") is None
    assert throttle.blocked("a") is None
    assert throttle.failure("a") == 60


def test_repeated_blocks_double_up_to_the_maximum():
    clock = FakeClock()
    throttle = FailureThrottle(limit=2, window=60, max_block=300, clock=clock)
    blocks = []
    for _ in range(5):
        throttle.failure("a")
        blocks.append(throttle.failure("a"))
        clock.now += blocks[-1]
        assert throttle.blocked("a") is None
    assert blocks == [60, 120, 240, 300, 300]
    # Quiet for longer than the longest block: a fresh start.
    clock.now += 301
    throttle.failure("a")
    assert throttle.failure("a") == 60


def test_memory_is_bounded_and_the_least_recent_client_goes_first():
    throttle = FailureThrottle(limit=2, window=60, max_clients=3, clock=FakeClock())
    for client in ("a", "b", "c"):
        throttle.failure(client)
    throttle.failure("a")  # a starts a block and becomes the most recent
    throttle.failure("d")
    assert len(throttle) == 3
    assert throttle.blocked("a") is not None
    for n in range(10_000):
        throttle.failure(f"x{n}")
    assert len(throttle) == 3


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        FailureThrottle(limit=0)
    with pytest.raises(ValueError):
        FailureThrottle(window=60, max_block=10)


def test_log_limiter_one_line_per_interval_with_the_count():
    clock = FakeClock()
    limiter = LogLimiter(interval=60, clock=clock)
    assert limiter.allow("a") == 0
    assert [limiter.allow("a") for _ in range(5)] == [None] * 5
    assert limiter.allow("b") == 0
    clock.now += 60
    assert limiter.allow("a") == 5
    assert limiter.allow("a") is None
    clock.now += 60
    assert limiter.allow("a") == 1


def test_log_limiter_is_bounded():
    limiter = LogLimiter(max_keys=10, clock=FakeClock())
    for n in range(1000):
        limiter.allow(str(n))
    assert len(limiter) == 10


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "-"),
        ("", "-"),
        ("/run/exporter.sock", "/run/exporter.sock"),
    ],
)
def test_client_key(remote, key):
    assert client_key(remote) == key


@pytest.mark.parametrize(("seconds", "header"), [(0.2, "1"), (59.5, "60"), (60, "60"), (0, "1")])
def test_retry_after_is_whole_seconds_never_zero(seconds, header):
    assert retry_after(seconds) == header
