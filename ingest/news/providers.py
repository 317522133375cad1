"""The news pollers ``FIML_PROVIDERS`` and ``FIML_NEWS`` call for, with their budgets.

With ``FIML_NEWS`` on (the default), each of ``yfinance``, ``fmp`` and ``alphavantage``
that runs for quotes polls its news too, and ``synthetic`` writes a synthetic story every
``FIML_SYNTHETIC_NEWS_SECONDS``. FMP and Alpha Vantage share a daily quota per key between
quotes and news (:func:`quote_requests_per_day`): FMP news takes 50 of the free 250
requests a day, Alpha Vantage news ``FIML_ALPHAVANTAGE_NEWS_PER_DAY`` (default 10, spent
only on the symbols clients subscribe to) of its 25, and the quotes keep the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.news.keyed_pollers import AlphaVantageNewsPoller, FmpNewsPoller
from ingest.news.planner import Budget
from ingest.news.synthetic_news import SyntheticNews
from ingest.news.yahoo_poller import YahooNewsPoller
from ingest.providers import Provider
from ingest.providers.keyed_http import spacing
from runtime.catalog import parse_provider
from runtime.settings import Settings

FMP_DAY = 250
FMP_NEWS_PER_DAY = 50
ALPHAVANTAGE_DAY = 25


def quote_requests_per_day(settings: Settings, family: str) -> int | None:
    """The daily requests the quote provider ``family`` may spend, or None for no limit of
    ours (its own default)."""
    if not settings.news:
        return None
    if family == "fmp":
        return FMP_DAY - FMP_NEWS_PER_DAY
    if family == "alphavantage":
        return ALPHAVANTAGE_DAY - settings.alphavantage_news_per_day
    return None


def news_providers(settings: Settings, names: Sequence[str]) -> list[Provider]:
    """The news pollers of the provider families in ``names`` (none with news off)."""
    if not settings.news:
        return []
    families = {parse_provider(name)[0] for name in names}
    timeout = settings.provider_call_timeout_seconds
    pollers: list[Provider] = []
    if "synthetic" in families:
        pollers.append(
            SyntheticNews(
                settings.symbols, settings.synthetic_seed, settings.synthetic_news_seconds
            )
        )
    if "yfinance" in families:
        pollers.append(YahooNewsPoller(settings.symbols, timeout_s=timeout))
    if "fmp" in families and settings.fmp_api_key:
        pollers.append(FmpNewsPoller(settings.fmp_api_key, settings.symbols, timeout_s=timeout))
    per_day = settings.alphavantage_news_per_day
    if "alphavantage" in families and settings.alphavantage_api_key and per_day > 0:
        budget = Budget(interval_s=spacing(5, per_day), demand_only=True)
        pollers.append(
            AlphaVantageNewsPoller(
                settings.alphavantage_api_key, settings.symbols, timeout_s=timeout, budget=budget
            )
        )
    return pollers
