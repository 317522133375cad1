"""``fiml replay``: write a topic's records for a time range as JSON lines or CSV.

Records come from :class:`fiml.replay.Replay` in event-time order; each is written as its
fields (times in microseconds since the epoch, as in the topics). With a speed, writing is
paced by event time: 1 is the original pace, 10 ten times faster; ``None`` writes at once.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from fiml.replay import STREAMS, Replay
from fiml.settings import Settings

FORMATS = ("jsonl", "csv")

Progress = Callable[[int, int], None]


def row(record: Any) -> dict[str, Any]:
    """A record's fields as a dict, in schema order."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def csv_cell(value: object) -> object:
    """A CSV cell: lists as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return value


class Writer:
    """Writes rows to ``out`` as JSON lines or CSV with a header."""

    def __init__(self, out: TextIO, fmt: str, stream: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.out = out
        self.csv = None
        if fmt == "csv":
            names = [f.name for f in dataclasses.fields(STREAMS[stream].record_type)]
            self.csv = csv.DictWriter(out, names, lineterminator="\n")
            self.csv.writeheader()

    def write(self, record: Any) -> None:
        values = row(record)
        if self.csv is None:
            self.out.write(orjson.dumps(values).decode() + "\n")
        else:
            self.csv.writerow({key: csv_cell(value) for key, value in values.items()})


async def export(settings: Settings, stream: str, symbols: list[str], start: int, end: int,
                 out: TextIO, fmt: str = "jsonl", *, timeframe: str | None = None,
                 speed: float | None = None, progress: Progress | None = None) -> int:
    """Write the records of ``stream`` in [start, end] (µs) to ``out``; returns how many.

    ``progress(done, total)`` is called with event time covered so far, in µs.
    """
    writer = Writer(out, fmt, stream)
    loop = asyncio.get_running_loop()
    began = loop.time()
    written = 0
    async with Replay(settings, stream, symbols, start, end, timeframe=timeframe) as replay:
        async for item in replay.records():
            if speed:
                wait = began + (item.time - start) / 1_000_000 / speed - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            writer.write(item.record)
            written += 1
            if progress is not None:
                progress(item.time - start, end - start)
    if progress is not None:
        progress(end - start, end - start)
    return written
