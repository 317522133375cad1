"""The Kafka security settings as Faust's broker credentials (the aiokafka clients take
them from ``runtime/kafka_security.py``)."""

from __future__ import annotations

import faust
from faust.types.auth import CredentialsT, SASLMechanism

from runtime.kafka_security import security_options, tls_context
from runtime.settings import Settings


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """SASL (over TLS for ``SASL_SSL``) or TLS credentials; None for ``PLAINTEXT``."""
    options = security_options(settings)  # checks that SASL has a user and a password
    protocol = options["security_protocol"]
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=SASLMechanism(options["sasl_mechanism"]),
            ssl_context=options.get("ssl_context"),
        )
    if protocol == "SSL":
        return faust.SSLCredentials(tls_context(settings))
    return None
