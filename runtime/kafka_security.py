"""The Kafka security settings (``FIML_KAFKA_SECURITY_PROTOCOL``, ``FIML_KAFKA_SASL_*``,
``FIML_KAFKA_SSL_*``) as the options every aiokafka client takes: SASL (PLAIN,
SCRAM-SHA-256/512) and TLS with a CA file and, for mutual TLS, a client certificate."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from runtime.settings import Settings
from runtime.settings_checks import ENV_PREFIX, SettingsError


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of an ``SSL`` or ``SASL_SSL`` connection, else None."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )
    return context


def security_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of an aiokafka client for the security settings."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = tls_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL"):
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise SettingsError(
                f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL={protocol} needs "
                f"{ENV_PREFIX}KAFKA_SASL_USERNAME and {ENV_PREFIX}KAFKA_SASL_PASSWORD"
            )
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options
