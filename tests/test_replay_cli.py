"""``fiml replay`` on the real broker: its output is the topic's records for the range."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import os
import pty
import signal
import sys
from pathlib import Path

import pytest

from fiml.export import csv_cell, row
from runtime.clock import now_micros
from schemas import Quote, Trade
from schemas.times import micros_to_iso
from tests.factories import BASE_US, MS, quote, replay_trade
from tests.support import poll_until, service_env
from tests.support_kafka import ingest_ms, produce, read_topic

SYMBOLS = ("AAPL", "MSFT", "BTC/USDT")
BAR = "━"


def quotes() -> list[Quote]:
    return [quote(SYMBOLS[n % 3], 100.0 + n, n * 1000) for n in range(60)]


async def run_cli(
    settings, *args: str, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fiml",
        "replay",
        *args,
        env=service_env(settings),
        stdout=stdout,
        stderr=stderr,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out or b"", err or b""


async def expected(settings, start: int, end: int) -> list[Quote]:
    stored = await read_topic(settings, "quotes", Quote)
    chosen = [
        (r.ts_event, p, o, r)
        for p, o, r in stored
        if r.symbol in {"AAPL", "BTC/USDT"} and start <= r.ts_event <= end
    ]
    return [r for *_, r in sorted(chosen, key=lambda item: item[:3])]


RANGE = (
    "--symbols",
    "AAPL,btc/usdt",
    "--start",
    micros_to_iso(BASE_US + 5000),
    "--end",
    micros_to_iso(BASE_US + 40_000),
)


async def test_jsonl_output_is_the_topics_records_for_the_range(topics):
    await produce(topics, "quotes", quotes(), written_ms=ingest_ms)
    code, out, err = await run_cli(topics, "--stream", "quotes", *RANGE)
    assert code == 0, err
    want = await expected(topics, BASE_US + 5000, BASE_US + 40_000)
    assert len(want) == 24
    assert [json.loads(line) for line in out.decode().splitlines()] == [row(r) for r in want]
    assert BAR not in err.decode()


async def test_csv_output_to_a_file_is_the_topics_records_for_the_range(topics, tmp_path):
    await produce(topics, "quotes", quotes(), written_ms=ingest_ms)
    target = tmp_path / "quotes.csv"
    code, _, err = await run_cli(
        topics,
        "--stream",
        "quotes",
        *RANGE,
        "--format",
        "csv",
        "--out",
        str(target),
        "--speed",
        "1000",
    )
    assert code == 0, err
    want = await expected(topics, BASE_US + 5000, BASE_US + 40_000)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows == [{k: str(csv_cell(v)) for k, v in row(r).items()} for r in want]
    assert json.loads(rows[0]["providers"]) == ["synthetic:alpha"]


async def test_a_terminal_gets_a_progress_bar(topics, tmp_path):
    await produce(topics, "quotes", quotes(), written_ms=ingest_ms)
    leader, follower = pty.openpty()
    try:
        code, _, _ = await run_cli(
            topics,
            "--stream",
            "quotes",
            *RANGE,
            "--speed",
            "100",
            "--out",
            str(tmp_path / "q.jsonl"),
            stderr=follower,
        )
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start", "2025-01-02T00:00:00Z", "--end", "2025-01-01T00:00:00Z"), "end is before"),
        (("--start", "then", "--end", "2025-01-01T00:00:00Z"), "ISO 8601"),
        (
            ("--start", "2025-01-01T00:00:00Z", "--end", "2025-01-02T00:00:00Z", "--speed", "0"),
            "--speed",
        ),
    ],
)
async def test_bad_arguments_are_refused(topics, args, message):
    code, _, err = await run_cli(topics, "--stream", "quotes", "--symbols", "AAPL", *args)
    assert code == 2
    assert message in err.decode()


def recent_trades(numbers: range, base: int) -> list[Trade]:
    """Trades ``number`` ms after ``base``, a recent time that the topic's retention keeps."""
    return [
        dataclasses.replace(
            t, ts_event=t.ts_event - BASE_US + base, ts_ingest=t.ts_ingest - BASE_US + base
        )
        for t in (replay_trade(n) for n in numbers)
    ]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def start_cli(settings, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fiml",
        "replay",
        *args,
        env=service_env(settings),
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_cli(process: asyncio.subprocess.Process, signum: int) -> tuple[int, bytes]:
    process.send_signal(signum)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    return process.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_without_end_it_follows_live_until_stopped(topics, tmp_path, signum):
    base = now_micros() // 1_000_000 * 1_000_000 - 60_000_000
    symbols = {"ETH/USDT", "AAPL"}
    await produce(topics, "trades", recent_trades(range(100), base), written_ms=ingest_ms)
    target = tmp_path / "follow.jsonl"
    process = await start_cli(
        topics,
        "--stream",
        "trades",
        "--symbols",
        "ETH/USDT,aapl",
        "--start",
        micros_to_iso(base + 10 * MS),
        "--out",
        str(target),
    )
    try:
        await poll_until(lambda: len(lines(target)) >= 45, 30)
        await produce(topics, "trades", recent_trades(range(100, 200), base), written_ms=ingest_ms)
        await poll_until(lambda: len(lines(target)) >= 95, 30)
    finally:
        code, err = await stop_cli(process, signum)
    assert code == 0, err
    assert b"Traceback" not in err
    stored = await read_topic(topics, "trades", Trade)
    place = {r.trade_id: (p, o) for p, o, r in stored}
    written = [row["trade_id"] for row in lines(target)]
    assert target.read_text().endswith("\n")
    assert written[:45] == [f"t{n}" for n in range(10, 100) if n % 2 == 0]
    live = written[45:]
    assert sorted(live) == sorted(f"t{n}" for n in range(100, 200) if n % 2 == 0)
    for partition in {place[i][0] for i in live}:
        offsets = [place[i][1] for i in live if place[i][0] == partition]
        assert offsets == sorted(offsets)
    assert {r.symbol for _, _, r in stored if r.trade_id in written} == symbols


async def test_a_signal_ends_a_replay_with_end_early_with_its_output_flushed(topics, tmp_path):
    base = now_micros() // 1_000_000 * 1_000_000 - 60_000_000
    await produce(
        topics, "trades", recent_trades(range(0, 60_000, 1000), base), written_ms=ingest_ms
    )
    target = tmp_path / "paced.jsonl"
    process = await start_cli(
        topics,
        "--stream",
        "trades",
        "--symbols",
        "ETH/USDT,AAPL",
        "--start",
        micros_to_iso(base),
        "--end",
        micros_to_iso(base + 60_000 * MS),
        "--speed",
        "1",
        "--out",
        str(target),
    )
    try:
        await poll_until(lambda: len(lines(target)) >= 1, 30)
    finally:
        code, err = await stop_cli(process, signal.SIGTERM)
    assert code == 130, err
    assert [row["trade_id"] for row in lines(target)][:1] == ["t0"]
    assert len(lines(target)) < 15
