"""Provider health at the gateway: the latest ProviderStatus of each provider, read from
``fiml.provider.status`` by the market feed, served at ``GET /v1/providers``
(``gateway/routes/providers.py``) and turned into ``status`` messages for clients whose
symbols a provider serves.

A client is told, per subscribed symbol (price, quote and multi_asset subscriptions), when a
provider listed in the symbol's latest quote reports DOWN (``provider_down``) or DEGRADED
(``provider_degraded``), and when that provider reports UP again (``provider_up``). Quotes
keep flowing from the other providers meanwhile, with their lower confidence. A status of a
provider's order book feed (``feed`` books) is listed beside, and tells no quote client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from schemas.records import TICKS_FEED, ProviderStatus
from schemas.times import micros_to_iso

UP = "UP"
NOTICES = {"UP": "provider_up", "DEGRADED": "provider_degraded", "DOWN": "provider_down"}


def provider_status_item(status: ProviderStatus) -> dict[str, object]:
    """The JSON shape of one provider's status."""
    return {
        "provider": status.provider,
        "status": status.state,
        "latency_ms": status.latency_ms,
        "error_kind": status.error_kind,
        "message": status.message,
        "timestamp": micros_to_iso(status.ts_event),
        "feed": status.feed,
    }


class ProviderStatuses:
    """Latest status per provider by event time, of its ticks (``latest``) and of its other
    feeds; ``version`` grows whenever the state (UP, DEGRADED, DOWN) of a provider's ticks
    changes, not with the periodic reports of the same state."""

    def __init__(self) -> None:
        self.latest: dict[str, ProviderStatus] = {}
        self.feeds: dict[tuple[str, str], ProviderStatus] = {}
        self.version = 0

    def update(self, status: ProviderStatus) -> None:
        """Keep ``status`` unless a newer one of its provider and feed is known."""
        if status.feed != TICKS_FEED:
            other = self.feeds.get((status.provider, status.feed))
            if other is None or other.ts_event <= status.ts_event:
                self.feeds[(status.provider, status.feed)] = status
            return
        current = self.latest.get(status.provider)
        if current is not None and current.ts_event > status.ts_event:
            return
        self.latest[status.provider] = status
        if current is None or current.state != status.state:
            self.version += 1

    def state(self, provider: str) -> str:
        """The provider's last state; UP for a provider that has not reported."""
        status = self.latest.get(provider)
        return UP if status is None else status.state

    def items(self) -> list[dict[str, object]]:
        """Every provider's latest status of each feed, by provider name, ticks first."""
        kept = {(name, TICKS_FEED): status for name, status in self.latest.items()}
        kept.update(self.feeds)
        order = sorted(kept, key=lambda key: (key[0], key[1] != TICKS_FEED, key[1]))
        return [provider_status_item(kept[key]) for key in order]


Notice = tuple[str, str, str]


def provider_notices(
    symbols: Iterable[str],
    serving: Callable[[str], Iterable[str]],
    state: Callable[[str], str],
    told: dict[tuple[str, str], str],
) -> list[Notice]:
    """``(symbol, provider, state)`` for every change a client has not been told yet.

    ``serving(symbol)`` names the providers of the symbol's latest quote; ``told`` maps
    ``(symbol, provider)`` to the state last reported to the client, for the providers it was
    told are not UP; it is updated, and entries of symbols no longer watched are dropped.
    A provider the client was told about is followed until it is UP again, even once it has
    left the symbol's quotes.
    """
    watched = set(symbols)
    for key in [key for key in told if key[0] not in watched]:
        del told[key]
    notices = []
    for symbol in sorted(watched):
        providers = set(serving(symbol)) | {p for (s, p) in told if s == symbol}
        for provider in sorted(providers):
            now = state(provider)
            if now == told.get((symbol, provider), UP):
                continue
            if now == UP:
                del told[(symbol, provider)]
            else:
                told[(symbol, provider)] = now
            notices.append((symbol, provider, now))
    return notices


def notice_message(notice: Notice, statuses: Mapping[str, ProviderStatus]) -> dict[str, str]:
    """The ``status`` message of one notice (without its timestamp)."""
    symbol, provider, state = notice
    status = statuses.get(provider)
    reason = f" ({status.error_kind})" if status is not None and status.error_kind else ""
    text = (
        f"provider {provider} is UP again"
        if state == UP
        else f"provider {provider} is {state}{reason}; {symbol} goes on from the others"
    )
    return {
        "type": "status",
        "symbol": symbol,
        "status": NOTICES[state],
        "provider": provider,
        "message": text,
    }
