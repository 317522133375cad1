"""The news record (schemas/news.py): Avro round trip, canonical URLs and story ids."""

from __future__ import annotations

import hashlib
import io
import json

import avro.io
import avro.schema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from schemas.codec import HEADER, SCHEMA_IDS, decode, encode, load_schema
from schemas.news import NewsItem, canonical_url, story_id

ITEM = NewsItem(
    "n" + "0" * 24,
    "Apple shares rise after earnings beat",
    "Summary.",
    "https://www.example.com/a?utm_source=x",
    "https://example.com/a",
    "Reuters",
    1_721_395_312_000_000,
    1_721_395_800_000_000,
    ["alphavantage", "fmp"],
    ["AAPL", "MSFT"],
    0.25,
    {"AAPL": 0.5},
    {"AAPL": 0.9, "MSFT": 0.1},
    "en-US",
    ["n" + "1" * 24],
)


def test_news_item_has_schema_id_11_and_round_trips() -> None:
    payload = encode(ITEM)
    assert HEADER.unpack_from(payload) == (0, 11)
    assert SCHEMA_IDS[NewsItem] == (11, "news_item.avsc")
    assert decode(payload, NewsItem) == ITEM


def test_the_official_avro_reader_reads_the_same_values() -> None:
    schema = avro.schema.parse(json.dumps(load_schema("news_item.avsc")))
    datum = avro.io.DatumReader(schema).read(
        avro.io.BinaryDecoder(io.BytesIO(encode(ITEM)[HEADER.size :]))
    )
    assert datum["symbols"] == ["AAPL", "MSFT"]
    assert datum["symbol_relevance"] == {"AAPL": 0.9, "MSFT": 0.1}
    assert datum["published_us"].timestamp() == 1_721_395_312  # 2024-07-19T13:21:52Z
    assert datum["replaces"] == ["n" + "1" * 24]


def test_a_raw_item_with_defaults_round_trips() -> None:
    item = NewsItem("nabc", "h", None, "https://a.com/x", "https://a.com/x", None, 1, 2)
    assert decode(encode(item), NewsItem) == item


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://www.wsj.com/tech/samsung-0e6652fc?siteid=yhoof2&yptr=yahoo",
            "https://wsj.com/tech/samsung-0e6652fc",
        ),
        (
            "http://M.WSJ.com:443/tech/samsung-0e6652fc/?utm_source=fmp&utm_medium=feed#comments",
            "https://wsj.com/tech/samsung-0e6652fc",
        ),
        (
            "https://mobile.reuters.com/x?b=2&GUCCOUNTER=1&a=1&fbclid=F&gclid=G&ncid=N",
            "https://reuters.com/x?a=1&b=2",
        ),
        ("https://user:secret@Example.COM./a", "https://example.com/a"),
        ("https://example.com:8443/a?q=a+b", "https://example.com:8443/a?q=a%20b"),
        ("https://www.com/", "https://www.com/"),
        ("https://finance.yahoo.com/news/x-123.html", "https://finance.yahoo.com/news/x-123.html"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/a",
        "https:///path",
        "https://[::1]/",
        "https://exa mple.com/",
        "https://example.com/a b",
        "mailto:x@example.com",
        "https://example.com:99999/",
        "https://" + "a" * 2050 + ".com/",
        "https://ex_ample.com/",
    ],
)
def test_what_is_no_web_address_has_no_canonical_url(url: str) -> None:
    assert canonical_url(url) is None


@given(
    st.one_of(
        urls(),
        st.text(max_size=80),
        st.builds(
            lambda host, path, query: f"https://{host}/{path}?{query}",
            st.sampled_from(["WWW.A.com", "m.b.org", "mobile.www.c.net."]),
            st.text(max_size=20),
            st.text(max_size=40),
        ),
    )
)
def test_canonical_url_is_idempotent(url: str) -> None:
    canonical = canonical_url(url)
    if canonical is not None:
        assert canonical_url(canonical) == canonical
        assert canonical.startswith("https://")
        assert "#" not in canonical


@given(urls())
def test_tracking_parameters_and_fragments_do_not_change_the_canonical_url(url: str) -> None:
    base = url.split("#", 1)[0]
    joiner = "&" if "?" in base else "?"
    tracked = f"{base}{joiner}utm_source=feed&guccounter=1&UTM_Campaign=x#top"
    assert canonical_url(tracked) == canonical_url(base)


def test_story_id_is_a_stable_hash_of_the_canonical_url() -> None:
    assert story_id("https://wsj.com/a") == story_id("https://wsj.com/a")
    assert story_id("https://wsj.com/a") != story_id("https://wsj.com/b")
    digest = hashlib.blake2b(b"https://wsj.com/a", digest_size=12).hexdigest()
    assert story_id("https://wsj.com/a") == "n" + digest
