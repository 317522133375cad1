"""A progress bar for the CLI on a terminal, and nothing when the output is piped."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

Advance = Callable[[int, int], None]


@contextlib.contextmanager
def progress_bar(show: bool, label: str) -> Iterator[Advance | None]:
    """Yield ``update(done, total)`` drawing a bar on stderr, or None when ``show`` is false."""
    if not show:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
