"""What every benchmark shares: a broker to run on, and reporting the result."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from fiml.local_kafka import temporary_broker

ROOT = Path(__file__).resolve().parent.parent

Measure = Callable[[str, int, Path], Awaitable[dict]]


@contextlib.contextmanager
def broker(tmp: Path) -> Iterator[str]:
    """The bootstrap address of FIML_KAFKA_BOOTSTRAP, or of a local broker started here."""
    if os.environ.get("FIML_KAFKA_BOOTSTRAP"):
        yield os.environ["FIML_KAFKA_BOOTSTRAP"]
        return
    with temporary_broker(tmp / "broker") as bootstrap:
        yield bootstrap


def run_and_report(measure: Measure, count: int, out: Path | None) -> None:
    """Run ``measure(bootstrap, count, tmp)`` on a broker, print its JSON, save it to ``out``."""
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp)) as bootstrap:
        result = asyncio.run(measure(bootstrap, count, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
