"""The Kafka security settings reach every client: aiokafka's options and Faust's broker
credentials, and the local broker's SCRAM user (offline; the real SASL_SSL broker is
tests/test_kafka_sasl_ssl.py)."""

from __future__ import annotations

import os
import ssl

import pytest
from faust import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

import runtime.kafka
from arbitration.kafka_auth import faust_credentials
from runtime.broker import KafkaRuntimeError, scram_user_options
from runtime.kafka import make_admin, make_consumer, make_producer
from runtime.kafka_security import security_options
from runtime.settings import Settings
from runtime.settings_checks import SettingsError

SASL = {
    "FIML_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "FIML_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "FIML_KAFKA_SASL_USERNAME": "fiml-gateway",
    "FIML_KAFKA_SASL_PASSWORD": "s3cret-pw",
}


def test_plaintext_is_the_default_and_faust_gets_no_credentials():
    settings = Settings()
    assert security_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_sasl_over_tls_reaches_aiokafka_and_faust_alike():
    settings = Settings.from_env(SASL)
    options = security_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "fiml-gateway",
        "s3cret-pw",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, SASLCredentials)
    faust_options = credentials_to_aiokafka_auth(credentials)
    assert {k: v for k, v in faust_options.items() if k != "ssl_context"} == {
        k: v for k, v in options.items() if k != "ssl_context"
    }
    assert isinstance(faust_options["ssl_context"], ssl.SSLContext)
    assert "s3cret-pw" not in repr(settings)


@pytest.mark.parametrize("kind", ["AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"])
def test_the_project_clients_are_built_with_the_security_settings(kind, monkeypatch):
    made: list[dict] = []
    monkeypatch.setattr(runtime.kafka, kind, lambda **options: made.append(options))
    settings = Settings.from_env(SASL)
    build = {
        "AIOKafkaProducer": lambda: make_producer(settings, "t"),
        "AIOKafkaConsumer": lambda: make_consumer(settings, "t"),
        "AIOKafkaAdminClient": lambda: make_admin(settings),
    }[kind]
    build()
    [options] = made
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_password"] == "s3cret-pw"


def test_tls_alone_gives_faust_tls_credentials():
    settings = Settings(kafka_security_protocol="SSL")
    assert isinstance(faust_credentials(settings), SSLCredentials)
    assert "sasl_mechanism" not in security_options(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FIML_KAFKA_SECURITY_PROTOCOL": "TLS"}, "FIML_KAFKA_SECURITY_PROTOCOL"),
        ({"FIML_KAFKA_SASL_MECHANISM": "GSSAPI"}, "FIML_KAFKA_SASL_MECHANISM"),
    ],
)
def test_an_unknown_protocol_or_mechanism_is_refused(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_sasl_without_a_user_is_refused_when_a_client_is_made():
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(SettingsError, match="FIML_KAFKA_SASL_USERNAME"):
        security_options(settings)


def test_the_local_broker_creates_the_scram_user_when_it_formats_its_storage():
    settings = Settings.from_env({**SASL, "FIML_KAFKA_SASL_PASSWORD": "Ab0-_.~+/="})
    assert scram_user_options(settings) == [
        "--add-scram",
        "SCRAM-SHA-256=[name=fiml-gateway,password=Ab0-_.~+/=]",
    ]
    assert scram_user_options(Settings()) == []


@pytest.mark.parametrize(
    "env",
    [
        {"FIML_KAFKA_SASL_PASSWORD": "a,b]"},  # the storage tool would split it
        {"FIML_KAFKA_SASL_USERNAME": "a=b"},
        {"FIML_KAFKA_SASL_MECHANISM": "PLAIN"},  # the local broker creates SCRAM users only
    ],
)
def test_the_local_broker_refuses_a_user_its_storage_tool_would_misread(env):
    with pytest.raises(KafkaRuntimeError):
        scram_user_options(Settings.from_env({**SASL, **env}))


def test_a_command_on_the_local_tls_broker_trusts_its_ca(tmp_path, monkeypatch):
    """As ``fiml up`` hands its services the local broker's CA, so do the other commands."""
    from fiml.command_settings import service_settings

    for name in [name for name in os.environ if name.startswith("FIML_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FIML_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("FIML_KAFKA_DATA_DIR", str(tmp_path))
    settings = service_settings()
    assert settings.kafka_bootstrap is not None
    assert settings.kafka_ssl_cafile == str(tmp_path / "tls" / "ca.pem")
