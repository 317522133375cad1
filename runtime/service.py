"""What every service process does around its work: logging set-up, and running until
SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import orjson

from runtime.redaction import RedactingFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("symbol", "provider")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, component (the logger's name), message, and
    ``symbol`` and ``provider`` when the call passed them with ``extra=``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "component": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, log_format: str = "auto") -> None:
    """Log to standard error: JSON lines (``json``, or ``auto`` when standard error is not a
    terminal), else lines with time, level, component and message (``text``); credentials in
    query strings are masked (``runtime/redaction.py``)."""
    handler = logging.StreamHandler(sys.stderr)
    json_lines = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, object]]) -> None:
    """Run ``main(stop)`` on a new event loop; SIGTERM and SIGINT set ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(runner())


async def until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set, whichever comes first."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if not task.cancelled():
        task.result()


async def restarting(
    work: Callable[[], Awaitable[None]],
    name: str,
    logger: logging.Logger,
    delay: float = 1.0,
    on_error: Callable[[], None] | None = None,
) -> None:
    """Run ``work()`` until cancelled; after an unexpected error log it, call ``on_error``,
    wait ``delay`` seconds and run it again."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s failed; restarting in %.0f s", name, delay)
            if on_error is not None:
                on_error()
            await asyncio.sleep(delay)
