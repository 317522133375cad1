"""Which providers ``FIML_PROVIDERS`` names: a factory per provider family.

An entry is a family (``synthetic``, ``ccxt``, ``yfinance``) or one member of it (``ccxt:kraken``);
``ccxt`` alone means every exchange of ``FIML_CCXT_EXCHANGES``. ``alphavantage`` and
``fmp`` run whenever their API key is set. Every live provider checks a demanded symbol
before serving it (:mod:`ingest.providers.admission`); ccxt's check reads the markets it
loads anyway, so only the others' lookups are bounded per minute. The news pollers of
these families come after them (:mod:`ingest.news.providers`).
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.news.providers import news_providers, quote_requests_per_day
from ingest.providers import Provider
from ingest.providers.admission import Admission
from ingest.providers.alphavantage import AlphaVantageProvider
from ingest.providers.ccxt_provider import CcxtProvider
from ingest.providers.fmp import FmpProvider
from ingest.providers.synthetic_provider import SyntheticProvider
from ingest.providers.yahoo_provider import YahooProvider
from runtime.catalog import parse_provider, provider_names
from runtime.exchanges import make_exchange
from runtime.settings import Settings

Factory = Callable[[Settings, str | None], list[Provider]]


def _synthetic(settings: Settings, member: str | None) -> list[Provider]:
    if member is not None:
        raise ValueError(f"unknown provider synthetic:{member} (use synthetic)")
    return [SyntheticProvider(settings)]


def _ccxt(settings: Settings, member: str | None) -> list[Provider]:
    exchanges = settings.ccxt_exchanges if member is None else (member,)
    return [
        CcxtProvider(
            make_exchange(exchange_id, settings.provider_call_timeout_seconds),
            settings.symbols,
            timeout_s=settings.provider_call_timeout_seconds,
            stall_s=settings.provider_stall_seconds,
            poll_seconds=settings.provider_poll_seconds,
            book_depth=settings.book_depth,
            admission=Admission.from_settings(f"ccxt:{exchange_id}", settings, bounded=False),
        )
        for exchange_id in exchanges
    ]


def _yfinance(settings: Settings, member: str | None) -> list[Provider]:
    if member is not None:
        raise ValueError(f"unknown provider yfinance:{member} (use yfinance)")
    return [
        YahooProvider(
            settings.symbols,
            timeout_s=settings.provider_call_timeout_seconds,
            stall_s=settings.provider_stall_seconds,
            poll_seconds=settings.provider_poll_seconds,
            admission=Admission.from_settings("yfinance", settings),
        )
    ]


def _alphavantage(settings: Settings, member: str | None) -> list[Provider]:
    if not settings.alphavantage_api_key:
        raise ValueError("alphavantage needs FIML_ALPHAVANTAGE_API_KEY")
    return [
        AlphaVantageProvider(
            "alphavantage",
            settings.alphavantage_api_key,
            settings.symbols,
            timeout_s=settings.provider_call_timeout_seconds,
            per_day=quote_requests_per_day(settings, "alphavantage"),
            admission=Admission.from_settings("alphavantage", settings),
        )
    ]


def _fmp(settings: Settings, member: str | None) -> list[Provider]:
    if not settings.fmp_api_key:
        raise ValueError("fmp needs FIML_FMP_API_KEY")
    return [
        FmpProvider(
            "fmp",
            settings.fmp_api_key,
            settings.symbols,
            timeout_s=settings.provider_call_timeout_seconds,
            per_day=quote_requests_per_day(settings, "fmp"),
            admission=Admission.from_settings("fmp", settings),
        )
    ]


FACTORIES: dict[str, Factory] = {
    "synthetic": _synthetic,
    "ccxt": _ccxt,
    "yfinance": _yfinance,
    "alphavantage": _alphavantage,
    "fmp": _fmp,
}


def build_providers(settings: Settings) -> list[Provider]:
    """The providers of :func:`runtime.catalog.provider_names`; ValueError names an unknown
    one."""
    names = provider_names(settings)
    unknown = [name for name in names if parse_provider(name)[0] not in FACTORIES]
    if unknown:
        raise ValueError(
            f"unknown providers: {', '.join(sorted(unknown))} (known: {', '.join(FACTORIES)})"
        )
    providers: list[Provider] = []
    for name in names:
        family, member = parse_provider(name)
        providers.extend(FACTORIES[family](settings, member))
    return providers + news_providers(settings, names)
