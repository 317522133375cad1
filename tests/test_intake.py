"""The one rule for records that are not ours (runtime/intake.py), the checks consumers add for
records that decode but make no sense to them, and the liveness rule (runtime/health.py)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from gateway.feed import check_event_time, check_status
from ingest.demand import check_demand
from runtime import intake
from runtime.health import HealthServer, Progress
from runtime.intake import decode_or_skip, skip
from runtime.metrics import RECORDS_SKIPPED
from schemas import Demand, ProviderStatus, Quote, encode
from tests.factories import BASE_US, Found


def skipped(topic: str, reason: str) -> float:
    return RECORDS_SKIPPED.labels(topic, reason)._value.get()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_record_that_is_not_ours_is_counted_logged_with_where_it_is_and_skipped(caplog):
    good = Demand("AMD", "gw", 1, BASE_US, 60.0)
    before = skipped("t.intake", "null")
    with caplog.at_level(logging.WARNING, logger="fiml.intake"):
        assert decode_or_skip(Found(None, topic="t.intake"), Demand) is None
        assert decode_or_skip(Found(encode(good)), Demand) == good
    assert skipped("t.intake", "null") == before + 1
    assert "skipped a record at t.intake-2:41 (null)" in caplog.text


def test_the_log_is_rate_limited_per_topic_and_reason_and_says_what_it_left_out(
    caplog, monkeypatch
):
    clock = Clock()
    monkeypatch.setattr(intake, "_throttle", intake._Throttle(clock))
    with caplog.at_level(logging.WARNING, logger="fiml.intake"):
        for offset in range(5):
            skip("t.rate", 0, offset, "empty", "an empty value")
        skip("t.rate", 0, 5, "corrupt", "bad")
        clock.now += intake.LOG_EVERY_SECONDS
        skip("t.rate", 0, 6, "empty", "an empty value")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "t.rate-0:0 (empty)" in lines[0] and "t.rate-0:5 (corrupt)" in lines[1]
    assert "t.rate-0:6 (empty)" in lines[2] and "4 more empty records" in lines[2]
    assert skipped("t.rate", "empty") == 6


def test_a_check_that_fails_skips_the_record_as_invalid():
    before = skipped("t.intake", "invalid")
    bad = Demand("AMD", "gw", -3, BASE_US, 60.0)
    assert decode_or_skip(Found(encode(bad)), Demand, check_demand) is None
    assert skipped("t.intake", "invalid") == before + 1


@pytest.mark.parametrize(
    "record",
    [
        Demand("AMD", "gw", -1, BASE_US, 60.0),
        Demand("amd", "gw", 1, BASE_US, 60.0),
        Demand("", "gw", 1, BASE_US, 60.0),
        Demand("AMD", "gw", 1, BASE_US, float("nan")),
        Demand("AMD", "gw", 1, BASE_US, float("inf")),
        Demand("AMD", "gw", 1, BASE_US, 0.0),
    ],
)
def test_demand_ingest_cannot_use_is_refused(record):
    with pytest.raises(ValueError):
        check_demand(record)


@pytest.mark.parametrize(
    "status",
    [
        ProviderStatus("p", BASE_US, "BROKEN"),
        ProviderStatus("p", 2**62, "UP"),
    ],
)
def test_statuses_clients_cannot_be_told_of_are_refused(status):
    with pytest.raises((ValueError, OverflowError)):
        check_status(status)
    check_status(dataclasses.replace(status, state="DOWN", ts_event=BASE_US))


def test_a_quote_no_date_can_show_is_skipped_by_the_gateway_check():
    quote = Quote("AAPL", 2**62, BASE_US, 1, 1.0, "p", 1.0)
    before = skipped("t.intake", "invalid")
    assert decode_or_skip(Found(encode(quote)), Quote, check_event_time) is None
    assert skipped("t.intake", "invalid") == before + 1
    fine = dataclasses.replace(quote, ts_event=BASE_US)
    assert decode_or_skip(Found(encode(fine)), Quote, check_event_time) == fine


def test_progress_stalls_only_while_records_wait_and_nothing_moves():
    clock = Clock()
    progress = Progress(limit=5.0, clock=clock)
    progress.observe((0,), 0)
    clock.now += 60
    assert progress.alive(), "an idle loop with nothing to read is alive"
    progress.observe((0,), 3)
    clock.now += 5
    assert progress.alive()
    clock.now += 0.1
    assert progress.stalled()
    progress.observe((1,), 3)
    assert progress.alive(), "a loop that moved is alive again"
    clock.now += 5.1
    progress.observe((1,), 0)
    assert progress.alive(), "it caught up"


def test_healthz_answers_503_while_the_liveness_check_fails():
    alive = [True]
    server = HealthServer(
        "127.0.0.1",
        0,
        lambda: False,
        lambda: alive[0],
        lambda: "broker unavailable (no broker); 7 records buffered",
    )
    assert server.answer("GET", "/healthz")[0] == 200
    alive[0] = False
    assert server.answer("GET", "/healthz") == (503, "application/json", b'{"status": "stalled"}')
    code, _, body = server.answer("GET", "/readyz")
    assert code == 503 and b"broker unavailable" in body
