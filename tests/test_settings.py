"""Tests of runtime/settings.py: defaults, FIML_* parsing, validation, to_env and topics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runtime.settings import DEFAULT_CRYPTO, DEFAULT_EQUITIES, Settings, TopicSpec
from runtime.settings_checks import SettingsError

HOUR_MS = 3_600_000
ROLES = {
    "ticks.raw",
    "provider.status",
    "quotes",
    "candles",
    "trades",
    "ticks.dlq",
    "demand",
    "arbitration.state",
    "news.raw",
    "news",
    "books.raw",
    "books.consolidated",
    "alerts.rules",
    "alerts.fired",
    "alerts.webhooks.dlq",
    "alerts.state",
}
COMPACTED = {"demand", "arbitration.state", "books.consolidated", "alerts.rules", "alerts.state"}


def test_defaults():
    s = Settings()
    assert s.kafka_bootstrap is None
    assert s.kafka_port == 9092
    assert s.kafka_controller_port == 9093
    assert s.topic_prefix == "fiml"
    assert s.partitions == 6
    assert s.replication_factor == 1
    assert s.raw_retention_hours == 7 * 24
    assert s.candles_retention_hours == 30 * 24
    assert s.dlq_retention_hours == 30 * 24
    assert s.providers == ("synthetic",)
    assert s.symbols == DEFAULT_EQUITIES + DEFAULT_CRYPTO
    assert "AAPL" in s.symbols and "BTC/USDT" in s.symbols
    assert s.synthetic_tick_hz == 10.0
    assert s.freshness_ms == 2000
    assert s.gateway_host == "127.0.0.1"
    assert s.gateway_port == 8000
    assert s.log_level == "info"


def test_from_empty_env_is_the_defaults():
    assert Settings.from_env({}) == Settings()


def test_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    s = Settings()
    assert s.cache_dir == str(tmp_path / "fiml")
    assert s.kafka_data_path == tmp_path / "fiml" / "broker"
    assert Settings(kafka_data_dir="/data/kafka").kafka_data_path == Path("/data/kafka")


def test_from_env_parses_each_kind_of_field():
    env = {
        "FIML_PARTITIONS": "12",
        "FIML_KAFKA_PORT": " 19092 ",
        "FIML_SYNTHETIC_TICK_HZ": "2.5",
        "FIML_HEARTBEAT_INTERVAL": "5",
        "FIML_PROVIDERS": " synthetic , ccxt:binance,,yfinance ,",
        "FIML_SYMBOLS": "AAPL,BTC/USDT",
        "FIML_KAFKA_BOOTSTRAP": "broker-1:9092,broker-2:9092",
        "FIML_LOG_LEVEL": "debug",
    }
    s = Settings.from_env(env)
    assert s.partitions == 12 and isinstance(s.partitions, int)
    assert s.kafka_port == 19092
    assert s.synthetic_tick_hz == 2.5
    assert s.heartbeat_interval == 5.0 and isinstance(s.heartbeat_interval, float)
    assert s.providers == ("synthetic", "ccxt:binance", "yfinance")
    assert s.symbols == ("AAPL", "BTC/USDT")
    assert s.kafka_bootstrap == "broker-1:9092,broker-2:9092"
    assert s.log_level == "debug"


def test_blank_and_unknown_variables_are_ignored():
    env = {
        "FIML_PARTITIONS": "   ",
        "FIML_KAFKA_BOOTSTRAP": "",
        "FIML_NO_SUCH_THING": "x",
        "PARTITIONS": "99",
    }
    assert Settings.from_env(env) == Settings()


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("FIML_PARTITIONS", "six"),
        ("FIML_PARTITIONS", "6.5"),
        ("FIML_KAFKA_PORT", "9092x"),
        ("FIML_FRESHNESS_MS", "2s"),
        ("FIML_SYNTHETIC_SEED", "seven"),
        ("FIML_SYNTHETIC_TICK_HZ", "fast"),
        ("FIML_HEARTBEAT_INTERVAL", "30 s"),
    ],
)
def test_bad_number_names_the_variable(variable, raw):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: raw})
    assert variable in str(info.value)
    assert raw.strip() in str(info.value)


@pytest.mark.parametrize("raw", ["0", "-1"])
@pytest.mark.parametrize(
    "variable",
    [
        "FIML_PARTITIONS",
        "FIML_REPLICATION_FACTOR",
        "FIML_SYNTHETIC_TICK_HZ",
        "FIML_FRESHNESS_MS",
        "FIML_HEARTBEAT_INTERVAL",
        "FIML_SEND_QUEUE_LIMIT",
    ],
)
def test_non_positive_values_are_refused(variable, raw):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: raw})


@pytest.mark.parametrize("raw", ["0.5", "0", "nan"])
def test_an_outlier_band_under_one_spread_is_refused(raw):
    with pytest.raises(SettingsError, match="FIML_OUTLIER_MADS must be at least 1"):
        Settings.from_env({"FIML_OUTLIER_MADS": raw})
    assert Settings.from_env({"FIML_OUTLIER_MADS": "1"}).outlier_mads == 1.0


def test_non_positive_partitions_refused_in_the_constructor_too():
    with pytest.raises(SettingsError, match="FIML_PARTITIONS"):
        Settings(partitions=0)


@pytest.mark.parametrize("variable", ["FIML_SYNTHETIC_TICK_HZ", "FIML_HEARTBEAT_INTERVAL"])
def test_nan_is_not_above_zero(variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: "nan"})


@pytest.mark.parametrize("raw", ["0", "-1", "65536", "100000"])
@pytest.mark.parametrize(
    "variable", ["FIML_KAFKA_PORT", "FIML_KAFKA_CONTROLLER_PORT", "FIML_GATEWAY_PORT"]
)
def test_bad_ports_are_refused(variable, raw):
    with pytest.raises(SettingsError, match=f"{variable} must be a TCP port"):
        Settings.from_env({variable: raw})


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds_are_accepted(port):
    s = Settings.from_env({"FIML_GATEWAY_PORT": str(port), "FIML_KAFKA_PORT": str(port)})
    assert s.gateway_port == s.kafka_port == port


def test_overrides_win_over_env():
    env = {
        "FIML_PARTITIONS": "12",
        "FIML_TOPIC_PREFIX": "from-env",
        "FIML_KAFKA_BOOTSTRAP": "env:9092",
    }
    s = Settings.from_env(env, partitions=3, kafka_bootstrap=None)
    assert s.partitions == 3
    assert s.kafka_bootstrap is None
    assert s.topic_prefix == "from-env"


def test_overrides_are_validated_too():
    with pytest.raises(SettingsError, match="FIML_PARTITIONS"):
        Settings.from_env({"FIML_PARTITIONS": "12"}, partitions=0)


def test_from_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("FIML_PARTITIONS", "9")
    monkeypatch.setenv("FIML_TOPIC_PREFIX", "proc")
    s = Settings.from_env()
    assert (s.partitions, s.topic_prefix) == (9, "proc")


def test_to_env_of_defaults_round_trips():
    s = Settings()
    env = s.to_env()
    assert all(key.startswith("FIML_") for key in env)
    assert "FIML_KAFKA_BOOTSTRAP" not in env
    assert env["FIML_PROVIDERS"] == "synthetic"
    assert env["FIML_PARTITIONS"] == "6"
    assert Settings.from_env(env) == s


def test_to_env_of_a_custom_configuration_round_trips():
    s = Settings(
        kafka_bootstrap="kafka:9092",
        partitions=24,
        synthetic_tick_hz=0.25,
        providers=("synthetic", "ccxt:binance"),
        symbols=("AAPL",),
        heartbeat_interval=12.5,
        topic_prefix="staging.fiml",
        kafka_data_dir="/d",
    )
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize("name", ["providers", "symbols"])
def test_empty_lists_are_refused(name):
    """An empty list could not survive to_env (a blank variable means unset), so refuse it."""
    with pytest.raises(SettingsError, match=name.upper()):
        Settings(**{name: ()})


tokens = st.text(alphabet="abcxyzABC0129:/._-", min_size=1, max_size=12)
settings_values = st.fixed_dictionaries(
    {
        "kafka_bootstrap": st.none() | tokens,
        "kafka_port": st.integers(1, 65535),
        "topic_prefix": tokens,
        "partitions": st.integers(1, 10_000),
        "raw_retention_hours": st.integers(0, 100_000),
        "providers": st.lists(tokens, min_size=1, max_size=4).map(tuple),
        "symbols": st.lists(tokens, min_size=1, max_size=6).map(tuple),
        "synthetic_seed": st.integers(-(2**40), 2**40),
        "synthetic_tick_hz": st.floats(min_value=1e-6, max_value=1e6),
        "heartbeat_interval": st.floats(min_value=1e-3, max_value=1e5),
        "gateway_host": tokens,
        "log_level": st.sampled_from(["debug", "info", "warning"]),
    }
)


@hypothesis_settings(max_examples=200)
@given(settings_values)
def test_to_env_round_trips(values):
    s = Settings(**values)
    env = s.to_env()
    assert all(isinstance(value, str) for value in env.values())
    assert Settings.from_env(env) == s


def test_topic_names_use_the_prefix():
    s = Settings(topic_prefix="acme")
    assert s.topic("quotes") == "acme.quotes"
    assert s.topic("ticks.raw") == "acme.ticks.raw"


def test_topics_have_the_roles_of_the_architecture():
    s = Settings(topic_prefix="acme", partitions=5)
    specs = s.topics()
    assert set(specs) == ROLES
    for role, spec in specs.items():
        assert isinstance(spec, TopicSpec)
        assert spec.name == f"acme.{role}"
        assert spec.partitions == 5
    assert len({spec.name for spec in specs.values()}) == len(ROLES)


def test_demand_and_arbitration_state_are_compacted_and_the_others_are_not():
    specs = Settings().topics()
    for role in COMPACTED:
        assert specs[role].compacted is True
        assert specs[role].retention_ms is None
    for role in ROLES - COMPACTED:
        assert specs[role].compacted is False
        assert specs[role].retention_ms is not None


def test_default_retention_in_milliseconds():
    specs = Settings().topics()
    week, month = 7 * 24 * HOUR_MS, 30 * 24 * HOUR_MS
    assert specs["ticks.raw"].retention_ms == week
    assert specs["provider.status"].retention_ms == week
    assert specs["quotes"].retention_ms == week
    assert specs["trades"].retention_ms == week
    assert specs["candles"].retention_ms == month
    assert specs["ticks.dlq"].retention_ms == month


def test_retention_hours_come_from_each_setting():
    s = Settings.from_env(
        {
            "FIML_RAW_RETENTION_HOURS": "1",
            "FIML_STATUS_RETENTION_HOURS": "2",
            "FIML_QUOTES_RETENTION_HOURS": "3",
            "FIML_CANDLES_RETENTION_HOURS": "4",
            "FIML_TRADES_RETENTION_HOURS": "5",
            "FIML_DLQ_RETENTION_HOURS": "6",
            "FIML_NEWS_RETENTION_HOURS": "7",
            "FIML_BOOKS_RETENTION_HOURS": "7",
            "FIML_ALERTS_RETENTION_HOURS": "7",
        }
    )
    retention = {role: spec.retention_ms for role, spec in s.topics().items()}
    assert retention == {
        "ticks.raw": 1 * HOUR_MS,
        "provider.status": 2 * HOUR_MS,
        "quotes": 3 * HOUR_MS,
        "candles": 4 * HOUR_MS,
        "trades": 5 * HOUR_MS,
        "ticks.dlq": 6 * HOUR_MS,
        "books.raw": 7 * HOUR_MS,
        "demand": None,
        "arbitration.state": None,
        "news.raw": 7 * HOUR_MS,
        "news": 7 * HOUR_MS,
        "books.consolidated": None,
        "alerts.rules": None,
        "alerts.fired": 7 * HOUR_MS,
        "alerts.webhooks.dlq": 7 * HOUR_MS,
        "alerts.state": None,
    }


CONSTRAINED_TEXT = {
    "log_format": "json",
    "kafka_security_protocol": "SSL",
    "kafka_sasl_mechanism": "PLAIN",
}


def test_every_field_has_a_variable_that_from_env_reads():
    """Setting FIML_<NAME> for each field changes exactly that field."""
    base = Settings()
    for f in dataclasses.fields(Settings):
        value = getattr(base, f.name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            raw = str(value + 1)
        elif isinstance(value, tuple):
            raw = "X,Y"
        else:
            raw = CONSTRAINED_TEXT.get(f.name, "changed")
        changed = Settings.from_env({f"FIML_{f.name.upper()}": raw})
        differing = [
            g.name
            for g in dataclasses.fields(Settings)
            if getattr(changed, g.name) != getattr(base, g.name)
        ]
        assert differing == [f.name]


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("0", False), ("Off", False), ("yes", True)]
)
def test_switches_read_the_usual_words(raw, value):
    settings = Settings.from_env({"FIML_SYNTHETIC_RESUME": raw})
    assert settings.synthetic_resume is value
    assert Settings.from_env(settings.to_env()).synthetic_resume is value


def test_a_switch_that_is_neither_true_nor_false_is_refused():
    with pytest.raises(SettingsError, match="FIML_SYNTHETIC_RESUME must be true or false"):
        Settings.from_env({"FIML_SYNTHETIC_RESUME": "maybe"})


def test_the_old_name_of_the_symbols_still_works_with_a_warning():
    with pytest.warns(
        FutureWarning, match="FIML_SYNTHETIC_SYMBOLS is deprecated; use FIML_SYMBOLS"
    ):
        old = Settings.from_env({"FIML_SYNTHETIC_SYMBOLS": "AAPL,BTC/USDT"})
    assert old.symbols == ("AAPL", "BTC/USDT")
    assert "FIML_SYNTHETIC_SYMBOLS" not in old.to_env()
    with pytest.warns(FutureWarning):
        both = Settings.from_env({"FIML_SYNTHETIC_SYMBOLS": "AAPL", "FIML_SYMBOLS": "MSFT"})
    assert both.symbols == ("MSFT",)
