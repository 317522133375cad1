"""The topics the services talk through, by role; a topic's name is
``<FIML_TOPIC_PREFIX>.<role>`` (see docs/topics.md)."""

from __future__ import annotations

from enum import StrEnum

from schemas.alerts import AlertRule, FiredAlert, WebhookDeadLetter
from schemas.books import BookEvent, ConsolidatedBook
from schemas.news import NewsItem
from schemas.records import Candle, Demand, ProviderStatus, Quote, RawTick, Rejected, Trade


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
    NEWS_RAW = "news.raw"
    NEWS = "news"
    BOOKS = "books.raw"
    CONSOLIDATED_BOOKS = "books.consolidated"
    ALERT_RULES = "alerts.rules"
    ALERTS_FIRED = "alerts.fired"
    WEBHOOK_DLQ = "alerts.webhooks.dlq"
    ALERTS_STATE = "alerts.state"


RECORD_TOPICS: dict[type, TopicRole] = {
    RawTick: TopicRole.RAW,
    ProviderStatus: TopicRole.STATUS,
    Quote: TopicRole.QUOTES,
    Candle: TopicRole.CANDLES,
    Trade: TopicRole.TRADES,
    Rejected: TopicRole.DLQ,
    Demand: TopicRole.DEMAND,
    NewsItem: TopicRole.NEWS,
    BookEvent: TopicRole.BOOKS,
    ConsolidatedBook: TopicRole.CONSOLIDATED_BOOKS,
    AlertRule: TopicRole.ALERT_RULES,
    FiredAlert: TopicRole.ALERTS_FIRED,
    WebhookDeadLetter: TopicRole.WEBHOOK_DLQ,
}
"""The topic whose values are each record type (its registry subject is
``<topic>-value``). NewsItem is written to ``news.raw`` too (each provider's copy); its
subject is the deduplicated topic's, which clients read."""
