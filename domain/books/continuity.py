"""Each venue's rules for keeping a local book in step with its feed.

Sequence rules, for a delta after a snapshot whose last update id is ``L`` (``last`` is the
last update id applied so far, ``L`` until a delta is applied):

- ``NEXT`` (Binance spot, Coinbase, and the ingest's own numbering): a delta whose last id is
  at most ``last`` is stale and skipped. The first delta applied after a snapshot must
  straddle it, ``first <= L + 1 <= last_id``; every later one must follow on,
  ``first == last + 1``.
- ``PREVIOUS`` (OKX): a delta applies if its ``prev_update_id`` is ``last``; one whose last
  id is at most ``last`` is stale (a repeat); anything else is a gap.

A delta without the ids its rule needs is a gap. Checksum rules (``checksums.py``) verify the
book after every message that carries the venue's checksum. A *windowed* feed keeps only the
top ``depth`` levels of each side (Kraken, OKX): the client truncates to that depth after every
message, and the venue sends the levels that move into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.books.checksums import KRAKEN_LEVELS, OKX_LEVELS
from schemas.books import BookEvent


class SequenceRule(StrEnum):
    """How a venue numbers its book messages."""

    NEXT = "next"
    PREVIOUS = "previous"


class ChecksumRule(StrEnum):
    """Which checksum a venue sends."""

    NONE = "none"
    KRAKEN = "kraken"
    OKX = "okx"


class Verdict(StrEnum):
    """What the sequence rule says of a delta."""

    FOLLOWS = "follows"
    STALE = "stale"
    GAP = "gap"


CHECKSUM_LEVELS = {ChecksumRule.KRAKEN: KRAKEN_LEVELS, ChecksumRule.OKX: OKX_LEVELS}


@dataclass(frozen=True)
class FeedRules:
    """The continuity rules of one venue's book feed."""

    sequence: SequenceRule = SequenceRule.NEXT
    checksum: ChecksumRule = ChecksumRule.NONE
    windowed: bool = False

    @property
    def checksum_levels(self) -> int:
        """Levels per side the checksum covers (0 without one)."""
        return CHECKSUM_LEVELS.get(self.checksum, 0)


VENUE_RULES = {
    "binance": FeedRules(SequenceRule.NEXT),
    "coinbase": FeedRules(SequenceRule.NEXT),
    "kraken": FeedRules(SequenceRule.NEXT, ChecksumRule.KRAKEN, windowed=True),
    "okx": FeedRules(SequenceRule.PREVIOUS, ChecksumRule.OKX, windowed=True),
}
DEFAULT_RULES = FeedRules()


def rules_for(provider: str) -> FeedRules:
    """The rules of ``provider`` (``ccxt:<exchange id>``); ``NEXT`` without a checksum otherwise."""
    kind, _, venue = provider.partition(":")
    return VENUE_RULES.get(venue, DEFAULT_RULES) if kind == "ccxt" else DEFAULT_RULES


def check_sequence(rule: SequenceRule, last: int | None, synced: bool, delta: BookEvent) -> Verdict:
    """Whether ``delta`` follows a book whose last applied update id is ``last``; ``synced``
    says whether a delta was applied since the snapshot."""
    final = delta.last_update_id
    if last is None or final is None:
        return Verdict.GAP
    if rule is SequenceRule.PREVIOUS:
        if delta.prev_update_id is None:
            return Verdict.GAP
        if delta.prev_update_id == last:
            return Verdict.FOLLOWS
        return Verdict.STALE if final <= last else Verdict.GAP
    first = delta.first_update_id
    if first is None:
        return Verdict.GAP
    if final <= last:
        return Verdict.STALE
    if first == last + 1 or (not synced and first <= last + 1):
        return Verdict.FOLLOWS
    return Verdict.GAP
