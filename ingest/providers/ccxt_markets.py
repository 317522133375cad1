"""The spot markets of the enabled CCXT exchanges, for the instrument catalog.

The gateway runs :func:`learn_ccxt_markets` in the background at start: each exchange's
markets are loaded once through ccxt (``load_markets``, the venue's public REST API) and
recorded in the app's :class:`fiml.catalog.ExchangeMarkets`, so a crypto pair no enabled
exchange lists is refused at subscribe time. A venue that cannot be reached (no network, a
region block) is retried after a long backoff; until some exchange answered, the catalog
lets every crypto pair pass.
"""

from __future__ import annotations

import asyncio
import logging
import random

from fiml.catalog import ExchangeMarkets, ccxt_exchange_ids
from fiml.settings import Settings
from ingest.providers.backoff import LONG
from ingest.providers.ccxt_mapping import spot_pairs
from ingest.providers.ccxt_provider import make_exchange

log = logging.getLogger("fiml.catalog")


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
