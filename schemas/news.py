"""The news record and the two rules every reader of it shares: the canonical URL and the id.

A story's canonical URL is the URL with what does not change the page taken out (see
:func:`canonical_url`); its id is a hash of that URL (:func:`story_id`). Times are integers,
microseconds since the epoch, UTC.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

MAX_URL_LENGTH = 2048
TRACKING_PREFIXES = ("utm_",)
# fmt: off
TRACKING_PARAMS = frozenset({
    "dclid", "fbclid", "gclid", "gclsrc", "guccounter", "guce_referrer", "guce_referrer_sig",
    "igshid", "mc_cid", "mc_eid", "msclkid", "ncid", "ocid", "siteid", "yptr",
})
# fmt: on
FOLDED_HOST_PREFIXES = ("www.", "m.", "mobile.")
DEFAULT_PORTS = frozenset({80, 443})
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One story: a provider's copy on the raw topic, the deduplicated story on the news topic."""

    id: str
    headline: str
    summary: str | None
    url: str
    canonical_url: str
    publisher: str | None
    published_us: int
    ts_ingest: int
    providers: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    sentiment: float | None = None
    symbol_sentiment: dict[str, float] = field(default_factory=dict)
    symbol_relevance: dict[str, float] = field(default_factory=dict)
    language: str | None = None
    replaces: list[str] = field(default_factory=list)


def story_symbol(key: bytes | None, item: NewsItem) -> str | None:
    """The symbol a record of a news topic is under: its key, if one of the item's symbols;
    else None (the record is not one of ours)."""
    symbol = key.decode(errors="replace") if key is not None else None
    return symbol if symbol is not None and symbol in item.symbols else None


def story_id(canonical: str) -> str:
    """``n`` and 24 hex digits of BLAKE2b over the canonical URL: the same URL, the same id."""
    return "n" + hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


def canonical_url(url: str) -> str | None:
    """The URL in the form compared for deduplication, or None when it is no web address.

    http and https become https; the host is lower case, without a trailing dot and without
    leading ``www.``, ``m.`` or ``mobile.`` (while a dot is left); ports 80 and 443, user
    info, the fragment, a trailing ``/`` of the path and tracking parameters (``utm_*`` and
    :data:`TRACKING_PARAMS`, any case) go; the other parameters are sorted by name, then
    value, and encoded alike. Applying it to its own result gives that result again.
    """
    text = url.strip()
    if (
        not text
        or len(text) > MAX_URL_LENGTH
        or any(c.isspace() or not c.isprintable() for c in text)
    ):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = _host(parts.hostname or "")
    if parts.scheme.lower() not in ("http", "https") or host is None:
        return None
    netloc = host if port is None or port in DEFAULT_PORTS else f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    query = urlencode(
        sorted(
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not _tracking(key)
        ),
        quote_via=quote,
    )
    canonical = f"https://{netloc}{path}" + (f"?{query}" if query else "")
    return canonical if len(canonical) <= MAX_URL_LENGTH else None


def _host(hostname: str) -> str | None:
    try:
        host = hostname.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if not _HOST.fullmatch(host):
        return None
    folded = True
    while folded:
        folded = False
        for prefix in FOLDED_HOST_PREFIXES:
            rest = host.removeprefix(prefix)
            if rest != host and "." in rest:
                host, folded = rest, True
    return host


def _tracking(key: str) -> bool:
    name = key.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)
