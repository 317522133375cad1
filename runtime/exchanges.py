"""The CCXT exchanges: how they are made (ccxt.pro where it has them, spot markets only)
and the spot pairs they list, loaded for the instrument catalog.

The gateway runs :func:`learn_ccxt_markets` in the background at start: each exchange's
markets are loaded once through ccxt (``load_markets``, the venue's public REST API) and
recorded in the app's :class:`runtime.catalog.ExchangeMarkets`, so a crypto pair no enabled
exchange lists is refused at subscribe time. A venue that cannot be reached (no network, a
region block) is retried after a long backoff; until some exchange answered, the catalog
lets every crypto pair pass. The ccxt provider (``ingest/providers/ccxt_provider.py``) makes
its exchanges here too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import ccxt.async_support
import ccxt.pro

from runtime.backoff import LONG
from runtime.catalog import ExchangeMarkets, ccxt_exchange_ids
from runtime.settings import Settings

log = logging.getLogger("fiml.catalog")


EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "watchTickers": {"name": "ticker"}},
    "okx": {"fetchMarkets": {"types": ["spot"]}},
}


def make_exchange(exchange_id: str, timeout_s: float) -> Any:
    """A ccxt.pro exchange (REST and WebSocket) when ccxt.pro has it, else ccxt's async one;
    spot markets only, and Binance's full ticker stream (with bid and ask) for tickers."""
    module = ccxt.pro if exchange_id in ccxt.pro.exchanges else ccxt.async_support
    if exchange_id not in module.exchanges:
        raise ValueError(f"unknown ccxt exchange {exchange_id!r}")
    return getattr(module, exchange_id)(
        {
            "enableRateLimit": True,
            "timeout": int(timeout_s * 1000),
            "options": EXCHANGE_OPTIONS.get(exchange_id, {}),
        }
    )


def spot_pairs(markets: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """The canonical pairs of every active spot market of loaded ccxt ``markets``."""
    return frozenset(symbol for symbol, market in markets.items() if active_spot(market))


def active_spot(market: Mapping[str, Any]) -> bool:
    """Whether a loaded ccxt market is an active spot market."""
    return bool(market.get("spot")) and market.get("active") is not False


async def learn_exchange_markets(
    exchange_id: str, timeout_s: float, markets: ExchangeMarkets, rng: random.Random | None = None
) -> frozenset[str]:
    """Load one exchange's spot pairs into ``markets``, retrying until it answers."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        exchange = make_exchange(exchange_id, timeout_s)
        try:
            pairs = spot_pairs(await asyncio.wait_for(exchange.load_markets(), timeout_s))
        except Exception as error:  # any venue fault: keep the permissive fallback, retry
            delay = LONG.delay(attempt, rng)
            attempt += 1
            log.warning(
                "markets of %s not loaded (%s: %s); retrying in %.0f s",
                exchange_id,
                type(error).__name__,
                str(error)[:200],
                delay,
            )
        else:
            markets.remember(exchange_id, pairs)
            log.info("catalog: %s lists %d spot pairs", exchange_id, len(pairs))
            return pairs
        finally:
            await exchange.close()
        await asyncio.sleep(delay)


async def learn_ccxt_markets(settings: Settings, markets: ExchangeMarkets) -> None:
    """Load the spot pairs of every exchange ``settings`` enables into ``markets``, each on
    its own."""
    await asyncio.gather(
        *(
            learn_exchange_markets(exchange_id, settings.provider_call_timeout_seconds, markets)
            for exchange_id in ccxt_exchange_ids(settings)
        )
    )
