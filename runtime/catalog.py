"""The instrument catalog: which symbols the configured providers can serve.

Light (the gateway imports it at subscribe time). The synthetic provider serves the
configured universe (any well-formed symbol with ``FIML_SYNTHETIC_ANY_SYMBOL``). The CCXT
exchanges serve the spot pairs they list: the gateway loads each enabled exchange's
markets in the background at start (see ``runtime/exchanges.py``) into its
:class:`ExchangeMarkets`, which its one :class:`Catalog` reads; until at least one enabled
exchange's markets are known (no network, a venue down), any crypto pair passes, and an
exchange lacking it reports ``missing_market``. Yahoo Finance, Alpha Vantage and FMP serve
the known Yahoo tickers, the configured universe's tickers and, for Yahoo, fiat currency
pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.settings import Settings

FIAT = frozenset(
    {
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "HKD",
        "SGD",
        "CNY",
        "INR",
        "MXN",
        "BRL",
        "ZAR",
        "TRY",
        "PLN",
        "KRW",
    }
)
KNOWN_YAHOO = frozenset(
    {
        "AAPL",
        "MSFT",
        "GOOGL",
        "GOOG",
        "AMZN",
        "META",
        "NVDA",
        "TSLA",
        "BRK-B",
        "JPM",
        "V",
        "MA",
        "UNH",
        "XOM",
        "JNJ",
        "PG",
        "HD",
        "COST",
        "AVGO",
        "ORCL",
        "AMD",
        "INTC",
        "IBM",
        "NFLX",
        "DIS",
        "KO",
        "PEP",
        "WMT",
        "BAC",
        "CSCO",
        "ADBE",
        "CRM",
        "QCOM",
        "TXN",
        "SPY",
        "QQQ",
        "DIA",
        "IWM",
        "VTI",
        "VOO",
        "GLD",
        "TLT",
        "^GSPC",
        "^DJI",
        "^IXIC",
        "^RUT",
        "^VIX",
        "^FTSE",
        "^GDAXI",
        "^N225",
        "^HSI",
        "GC=F",
        "SI=F",
        "CL=F",
        "BZ=F",
        "NG=F",
        "HG=F",
        "ES=F",
        "NQ=F",
        "YM=F",
        "ZC=F",
        "ZW=F",
    }
)
YAHOO_FAMILIES = frozenset({"yfinance", "alphavantage", "fmp"})


class ExchangeMarkets:
    """The spot pairs of the exchanges whose markets are loaded, by exchange id."""

    def __init__(self) -> None:
        self.pairs: dict[str, frozenset[str]] = {}

    def remember(self, exchange_id: str, pairs: frozenset[str]) -> None:
        """Record the spot pairs ``exchange_id`` lists."""
        self.pairs[exchange_id] = pairs

    def lists(self, exchange_ids: tuple[str, ...], symbol: str) -> bool | None:
        """Whether one of ``exchange_ids`` lists ``symbol``; None while none of their
        markets is known."""
        known = [self.pairs[exchange] for exchange in exchange_ids if exchange in self.pairs]
        return any(symbol in pairs for pairs in known) if known else None


def parse_provider(name: str) -> tuple[str, str | None]:
    """An entry of ``FIML_PROVIDERS`` as (family, member): ``ccxt:kraken`` is
    ``("ccxt", "kraken")``, ``ccxt`` is ``("ccxt", None)``."""
    family, _, member = name.partition(":")
    return family, member or None


def provider_names(settings: Settings) -> list[str]:
    """The providers that run: ``FIML_PROVIDERS`` (each once), plus ``alphavantage`` and
    ``fmp`` when their API key is set."""
    names = list(dict.fromkeys(settings.providers))
    families = {parse_provider(name)[0] for name in names}
    keyed = {"alphavantage": settings.alphavantage_api_key, "fmp": settings.fmp_api_key}
    names.extend(
        name for name, key in keyed.items() if (key or name in families) and name not in names
    )
    return names


def provider_families(settings: Settings) -> frozenset[str]:
    """The provider families that run."""
    return frozenset(parse_provider(name)[0] for name in provider_names(settings))


def needs_exchange_markets(settings: Settings) -> bool:
    """Whether the catalog depends on exchange markets: ``ccxt`` runs and no ``synthetic``
    that serves any pair."""
    families = provider_families(settings)
    return "ccxt" in families and not ("synthetic" in families and settings.synthetic_any_symbol)


def ccxt_exchange_ids(settings: Settings) -> tuple[str, ...]:
    """The exchanges ``FIML_PROVIDERS`` enables: ``ccxt`` names all of
    ``FIML_CCXT_EXCHANGES``, ``ccxt:<id>`` one."""
    ids: list[str] = []
    for name in provider_names(settings):
        family, member = parse_provider(name)
        if family == "ccxt":
            ids.extend([member] if member else settings.ccxt_exchanges)
    return tuple(dict.fromkeys(ids))


def is_fiat_pair(symbol: str) -> bool:
    """``EUR/USD`` yes, ``BTC/USDT`` no."""
    base, slash, quote = symbol.partition("/")
    return bool(slash) and base in FIAT and quote in FIAT


@dataclass(frozen=True)
class Catalog:
    """What a set of provider families can serve."""

    families: frozenset[str]
    universe: frozenset[str] = frozenset()
    exchanges: tuple[str, ...] = ()
    markets: ExchangeMarkets = field(default_factory=ExchangeMarkets, compare=False)
    any_symbol: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, markets: ExchangeMarkets | None = None) -> Catalog:
        """The catalog of the providers ``settings`` runs; crypto pairs are checked against
        ``markets`` as they become known (none known: any pair passes)."""
        return cls(
            provider_families(settings),
            frozenset(settings.symbols),
            ccxt_exchange_ids(settings),
            markets or ExchangeMarkets(),
            settings.synthetic_any_symbol,
        )

    def can_serve(self, symbol: str) -> bool:
        """Whether some configured provider can serve the canonical ``symbol``."""
        if "synthetic" in self.families and (self.any_symbol or symbol in self.universe):
            return True
        if "/" in symbol:
            if is_fiat_pair(symbol):
                return "yfinance" in self.families
            return "ccxt" in self.families and (
                self.markets.lists(self.exchanges, symbol) is not False
            )
        return bool(self.families & YAHOO_FAMILIES) and (
            symbol in KNOWN_YAHOO or symbol in self.universe
        )
