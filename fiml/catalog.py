"""The instrument catalog: which symbols the configured providers can serve.

Pure and light (the gateway imports it at subscribe time). The synthetic provider serves
any well-formed symbol; the CCXT exchanges any crypto pair (the gateway does not load
their markets; an exchange lacking one reports it as ``missing_market``); Yahoo Finance,
Alpha Vantage and FMP serve the known Yahoo tickers, the configured universe's tickers and,
for Yahoo, fiat currency pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from fiml.settings import Settings

FIAT = frozenset({"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK",
                  "HKD", "SGD", "CNY", "INR", "MXN", "BRL", "ZAR", "TRY", "PLN", "KRW"})
KNOWN_YAHOO = frozenset({
    "AAPL", "MSFT", "GOOGL", "GOOG", "AMZN", "META", "NVDA", "TSLA", "BRK-B", "JPM", "V", "MA",
    "UNH", "XOM", "JNJ", "PG", "HD", "COST", "AVGO", "ORCL", "AMD", "INTC", "IBM", "NFLX",
    "DIS", "KO", "PEP", "WMT", "BAC", "CSCO", "ADBE", "CRM", "QCOM", "TXN", "SPY", "QQQ",
    "DIA", "IWM", "VTI", "VOO", "GLD", "TLT", "^GSPC", "^DJI", "^IXIC", "^RUT", "^VIX",
    "^FTSE", "^GDAXI", "^N225", "^HSI", "GC=F", "SI=F", "CL=F", "BZ=F", "NG=F", "HG=F", "ES=F",
    "NQ=F", "YM=F", "ZC=F", "ZW=F",
})
YAHOO_FAMILIES = frozenset({"yfinance", "alphavantage", "fmp"})


def provider_families(settings: Settings) -> frozenset[str]:
    """The provider families that run: ``FIML_PROVIDERS`` plus those with an API key set."""
    families = {name.partition(":")[0] for name in settings.providers}
    if settings.alphavantage_api_key:
        families.add("alphavantage")
    if settings.fmp_api_key:
        families.add("fmp")
    return frozenset(families)


def is_fiat_pair(symbol: str) -> bool:
    """``EUR/USD`` yes, ``BTC/USDT`` no."""
    base, slash, quote = symbol.partition("/")
    return bool(slash) and base in FIAT and quote in FIAT


@dataclass(frozen=True)
class Catalog:
    """What a set of provider families can serve."""

    families: frozenset[str]
    universe: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        """The catalog of the providers ``settings`` runs."""
        return cls(provider_families(settings), frozenset(settings.synthetic_symbols))

    def can_serve(self, symbol: str) -> bool:
        """Whether some configured provider can serve the canonical ``symbol``."""
        if "synthetic" in self.families:
            return True
        if "/" in symbol:
            if is_fiat_pair(symbol):
                return "yfinance" in self.families
            return "ccxt" in self.families
        return bool(self.families & YAHOO_FAMILIES) and (
            symbol in KNOWN_YAHOO or symbol in self.universe)
