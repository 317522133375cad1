"""The settings a command runs with (the environment's, with its options as overrides), and
its time options."""

from __future__ import annotations

import typer

from runtime.broker import LocalKafka
from runtime.registry_client import RegistryError
from runtime.schema_ids import use_registry
from runtime.service import configure_logging
from runtime.settings import Settings
from runtime.settings_checks import SettingsError
from schemas.times import datetime_to_micros, parse_iso


def command_settings(**overrides: object) -> Settings:
    """The environment's settings with ``overrides`` (None ones left out); a bad value is
    the command line's error."""
    try:
        return Settings.from_env(None, **{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:
        raise typer.BadParameter(str(error)) from None


def service_settings(**overrides: object) -> Settings:
    """:func:`command_settings` for a command that runs on Kafka: the local broker unless
    one is set (as ``fiml up`` gives its services), logging configured, the schema
    registry's ids in use if there is one."""
    settings = command_settings(**overrides)
    if settings.kafka_bootstrap is None:  # the local broker, with its CA for a TLS listener
        settings = LocalKafka(settings).client_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        use_registry(settings)
    except RegistryError as error:
        typer.echo(f"fiml: schema registry: {error}", err=True)
        raise typer.Exit(1) from None
    return settings


def time_option(value: str, name: str) -> int:
    """ISO 8601 (UTC unless it says otherwise) to microseconds since the epoch."""
    try:
        moment = parse_iso(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=name) from None
    return datetime_to_micros(moment)
