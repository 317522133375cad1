"""The topics the services talk through, by role; a topic's name is
``<FIML_TOPIC_PREFIX>.<role>`` (see docs/topics.md)."""

from __future__ import annotations

from enum import StrEnum


class TopicRole(StrEnum):
    """What a topic holds."""

    RAW = "ticks.raw"
    STATUS = "provider.status"
    QUOTES = "quotes"
    CANDLES = "candles"
    TRADES = "trades"
    DLQ = "ticks.dlq"
    DEMAND = "demand"
    STATE = "arbitration.state"
