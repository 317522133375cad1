"""Faust's Monitor without its per-message and per-send bookkeeping.

Faust's Monitor counts every message, event, send and commit in memory for its web views,
which the worker does not serve (``web_enabled=False``); what the worker reports is in its
own metrics (``runtime/metrics.py``, ``arbitration/monitor.py``: outputs, rejections, lag,
skipped records). Rebalance and assignment hooks are Faust's, as is
``stream_inbound_time``, which Faust's livelock detector reads.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor
from faust.types import TP


class QuietMonitor(Monitor):
    """A Monitor whose per-message, per-send and per-commit hooks keep nothing."""

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        """Nothing: the worker counts its records itself."""

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> None:
        """Only what the livelock detector reads."""
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """Nothing."""

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        """Nothing."""

    def on_topic_buffer_full(self, tp: TP) -> None:
        """Nothing."""

    def on_commit_initiated(self, consumer: Any) -> None:
        """Nothing."""

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        """Nothing."""

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        """Nothing: the worker counts its outputs itself."""

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """Nothing."""

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """Nothing: a failed send is logged and retried by the relay."""

    def on_tp_commit(self, tp_offsets: Any) -> None:
        """Nothing."""

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        """Nothing: ``arbitration/monitor.py`` reads the consumer's highwater itself."""
