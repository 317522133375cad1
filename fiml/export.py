"""``fiml replay``: write a topic's records for a time range as JSON lines or CSV.

Records come from :class:`runtime.replay.Replay` in event-time order; each is written as its
fields (times in microseconds since the epoch, as in the topics). With a speed, writing is
paced by event time (``runtime/pacing.py``): 1 is the original pace, 10 ten times faster;
``None`` writes at once.
Without an end the replay follows the topic live until it is told to stop. The output is
flushed whenever writing would wait, so a reader sees each record once it is written.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from runtime.clock import now_micros
from runtime.pacing import Pacer
from runtime.replay import Replay
from runtime.replay_request import STREAMS, Keyed, ReplayRequest
from runtime.service import until_stopped
from runtime.settings import Settings

FORMATS = ("jsonl", "csv")
CHUNK = 500

Progress = Callable[[int, int], None]


def row(record: Any) -> dict[str, Any]:
    """A record's fields as a dict, in schema order (a keyed record's symbol first)."""
    if isinstance(record, Keyed):
        return {"symbol": record.symbol, **row(record.record)}
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def csv_cell(value: object) -> object:
    """A CSV cell: lists and maps as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return value


class Writer:
    """Writes rows to ``out`` as JSON lines or CSV with a header."""

    def __init__(self, out: TextIO, fmt: str, stream: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.out = out
        self.written = 0
        self.csv = None
        if fmt == "csv":
            source = STREAMS[stream]
            names = [f.name for f in dataclasses.fields(source.record_type)]
            names = ["symbol", *names] if source.keyed else names
            self.csv = csv.DictWriter(out, names, lineterminator="\n")
            self.csv.writeheader()

    def write(self, record: Any) -> None:
        """Write one record as a line."""
        self.written += 1
        values = row(record)
        if self.csv is None:
            self.out.write(orjson.dumps(values).decode() + "\n")
        else:
            self.csv.writerow({key: csv_cell(value) for key, value in values.items()})


async def export(
    settings: Settings,
    request: ReplayRequest,
    out: TextIO,
    fmt: str = "jsonl",
    *,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Write the records ``request`` names to ``out``; returns how many.

    Without an end the records written since follow, as they arrive, until ``stop`` is set;
    ``stop`` also ends a replay with an end early. ``progress(done, total)`` is called with
    the event time covered so far and the length of the range, in µs; without an end the
    range runs to now.
    """
    writer = Writer(out, fmt, request.stream)
    async with Replay(settings, request) as replay:
        copying = _copy(replay, writer, request.speed, progress)
        await (copying if stop is None else until_stopped(copying, stop))
    out.flush()
    start, end = request.start, request.end
    if progress is not None and end is not None and (stop is None or not stop.is_set()):
        progress(end - start, end - start)
    return writer.written


async def _copy(
    replay: Replay, writer: Writer, speed: float | None, progress: Progress | None
) -> None:
    loop = asyncio.get_running_loop()
    start, end = replay.start, replay.end
    pacer = Pacer(start, speed, loop.time())

    def advance(time: int) -> None:
        writer.out.flush()
        if progress is not None:
            done = time - start
            progress(done, max(done, (now_micros() if end is None else end) - start))

    async for chunk in replay.chunks(CHUNK):
        for item in chunk:
            wait = pacer.wait(item.time, loop.time())
            if wait > 0:
                advance(item.time)
                await asyncio.sleep(wait)
            writer.write(item.record)
        advance(chunk[-1].time)
