"""``fiml replay`` on the real broker: its output is the topic's records for the range."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import sys

import pytest

from fiml.export import csv_cell, row
from schemas import Quote
from schemas.records import micros_to_iso
from tests.support import read_topic, service_env
from tests.test_gateway import make_quote
from tests.test_replay_reader import BASE_US, produce_timed

SYMBOLS = ("AAPL", "MSFT", "BTC/USDT")
BAR = "━"


def quotes() -> list[Quote]:
    return [make_quote(SYMBOLS[n % 3], 100.0 + n, n * 1000) for n in range(60)]


async def run_cli(settings, *args: str, stdout=asyncio.subprocess.PIPE,
                  stderr=asyncio.subprocess.PIPE) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fiml", "replay", *args, env=service_env(settings),
        stdout=stdout, stderr=stderr, stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out or b"", err or b""


async def expected(settings, start: int, end: int) -> list[Quote]:
    stored = await read_topic(settings, "quotes", Quote)
    chosen = [(r.ts_event, p, o, r) for p, o, r in stored
              if r.symbol in {"AAPL", "BTC/USDT"} and start <= r.ts_event <= end]
    return [r for *_, r in sorted(chosen, key=lambda item: item[:3])]


RANGE = ("--symbols", "AAPL,btc/usdt", "--start", micros_to_iso(BASE_US + 5000),
         "--end", micros_to_iso(BASE_US + 40_000))


async def test_jsonl_output_is_the_topics_records_for_the_range(topics):
    await produce_timed(topics, "quotes", quotes())
    code, out, err = await run_cli(topics, "--stream", "quotes", *RANGE)
    assert code == 0, err
    want = await expected(topics, BASE_US + 5000, BASE_US + 40_000)
    assert len(want) == 24
    assert [json.loads(line) for line in out.decode().splitlines()] == [row(r) for r in want]
    assert BAR not in err.decode()


async def test_csv_output_to_a_file_is_the_topics_records_for_the_range(topics, tmp_path):
    await produce_timed(topics, "quotes", quotes())
    target = tmp_path / "quotes.csv"
    code, _, err = await run_cli(topics, "--stream", "quotes", *RANGE, "--format", "csv",
                                 "--out", str(target), "--speed", "1000")
    assert code == 0, err
    want = await expected(topics, BASE_US + 5000, BASE_US + 40_000)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows == [{k: str(csv_cell(v)) for k, v in row(r).items()} for r in want]
    assert json.loads(rows[0]["providers"]) == ["synthetic:alpha"]


async def test_a_terminal_gets_a_progress_bar(topics, tmp_path):
    await produce_timed(topics, "quotes", quotes())
    leader, follower = pty.openpty()
    try:
        code, _, _ = await run_cli(topics, "--stream", "quotes", *RANGE, "--speed", "100",
                                   "--out", str(tmp_path / "q.jsonl"), stderr=follower)
        os.close(follower)
        shown = b""
        while chunk := await asyncio.to_thread(_read_pty, leader):
            shown += chunk
    finally:
        os.close(leader)
    assert code == 0
    assert BAR in shown.decode(errors="replace")
    assert "24 records" in shown.decode(errors="replace")


def _read_pty(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


@pytest.mark.parametrize(("args", "message"), [
    (("--start", "2025-01-02T00:00:00Z", "--end", "2025-01-01T00:00:00Z"), "end is before"),
    (("--start", "then", "--end", "2025-01-01T00:00:00Z"), "ISO 8601"),
    (("--start", "2025-01-01T00:00:00Z", "--end", "2025-01-02T00:00:00Z", "--speed", "0"),
     "--speed"),
])
async def test_bad_arguments_are_refused(topics, args, message):
    code, _, err = await run_cli(topics, "--stream", "quotes", "--symbols", "AAPL", *args)
    assert code == 2
    assert message in err.decode()
