"""Schema ids from a schema registry, when ``FIML_SCHEMA_REGISTRY_URL`` names one.

Without it nothing here runs and the codec keeps its fixed ids. With it, every service at
its start (:func:`use_registry`) sets BACKWARD compatibility on the subject of each record
topic (``<topic>-value``), registers the schema's one text there and writes the ids the
registry returns; an id means what the registry says from then on. A reader that meets an id
it does not know asks the registry once (:func:`learn_schema`, called by
``runtime.intake.decode_or_skip``; :func:`learn_ids` for arbitration's raw ticks) and keeps
the answer. An id the registry does not know either (404) is not asked again for
``MISS_SECONDS`` (at most ``MAX_MISSES`` such ids are remembered), and its records are
skipped as today. A registry that does not answer, fails or refuses the credentials is not
asked again for ``RETRY_SECONDS``; meanwhile :func:`learn_ids` raises
:class:`RegistryUnavailable` (arbitration processes the batch again after a backoff, so a
good raw tick never goes to the DLQ) and :func:`learn_schema` returns False (the record is
skipped). Credentials go to the client only, never into a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from runtime.registry_client import IncompatibleSchemaError, RegistryError, SchemaRegistry
from runtime.settings import Settings
from schemas import codec, registry_ids
from schemas.registry_plan import schema_text, subject
from schemas.topics import RECORD_TOPICS

log = logging.getLogger("fiml.registry")

COMPATIBILITY = "BACKWARD"
MISS_SECONDS = 60.0
RETRY_SECONDS = 5.0
MAX_MISSES = 1024


class RegistryUnavailable(RuntimeError):
    """The registry did not answer for an id a record carries."""


class Resolver:
    """Looks ids up in ``client`` and teaches the codec their schemas."""

    def __init__(self, client: SchemaRegistry, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.misses: dict[int, float] = {}
        self.unavailable_until = 0.0

    def learn(self, schema_id: int) -> bool:
        """Whether the codec knows ``schema_id`` now; raises RegistryUnavailable."""
        if schema_id in codec.SCHEMAS_BY_ID:
            return True
        now = self.clock()
        if self.misses.get(schema_id, 0.0) > now:
            return False
        if self.unavailable_until > now:
            raise RegistryUnavailable(f"{self.client.url} did not answer lately")
        try:
            text = self.client.schema(schema_id)
            schema = registry_ids.schema_from_text(schema_id, text)
        except RegistryError as error:
            if error.status != 404:  # no answer, a server error, or refused credentials
                self.unavailable_until = now + RETRY_SECONDS
                log.warning("schema id %d: the registry did not answer: %s", schema_id, error)
                raise RegistryUnavailable(str(error)) from None
            self._miss(schema_id, now, str(error))
            return False
        except ValueError as error:
            self._miss(schema_id, now, str(error))
            return False
        registry_ids.add_schema(schema)
        log.info("schema id %d: %s from the registry", schema_id, schema.record_type.__name__)
        return True

    def _miss(self, schema_id: int, now: float, why: str) -> None:
        if len(self.misses) >= MAX_MISSES:
            self.misses = {key: until for key, until in self.misses.items() if until > now}
            while len(self.misses) >= MAX_MISSES:
                del self.misses[next(iter(self.misses))]
        self.misses[schema_id] = now + MISS_SECONDS
        log.warning("schema id %d is not ours: %s", schema_id, why)


_resolver: Resolver | None = None


def connect(settings: Settings) -> SchemaRegistry:
    """A client of the registry ``settings`` name (``FIML_SCHEMA_REGISTRY_URL``)."""
    if settings.schema_registry_url is None:
        raise ValueError("FIML_SCHEMA_REGISTRY_URL is not set")
    return SchemaRegistry(
        settings.schema_registry_url,
        username=settings.schema_registry_username,
        password=settings.schema_registry_password,
        timeout=settings.schema_registry_timeout_seconds,
    )


def register_subjects(client: SchemaRegistry, settings: Settings) -> dict[type, int]:
    """Register the current schema of every record topic under its subject with BACKWARD
    compatibility; the id of each record type. Raises IncompatibleSchemaError when a
    subject's latest version cannot be read by the schema."""
    ids = {}
    for record_type, role in RECORD_TOPICS.items():
        name = subject(settings.topic(role))
        try:
            client.set_compatibility(name, COMPATIBILITY)
        except IncompatibleSchemaError:
            # Apicurio's 409 when another service created the subject's rule meanwhile;
            # the rule exists now, and setting it again updates it
            client.set_compatibility(name, COMPATIBILITY)
        ids[record_type] = client.register(name, schema_text(codec.SCHEMA_IDS[record_type][1]))
    return ids


def use_registry(settings: Settings) -> None:
    """With ``FIML_SCHEMA_REGISTRY_URL`` set: register, write the registry's ids and look
    unknown ids up there. Without: nothing. Raises RegistryError if the registry refuses."""
    global _resolver
    if settings.schema_registry_url is None:
        return
    client = connect(settings)
    ids = register_subjects(client, settings)
    registry_ids.use_writer_ids(ids)
    if _resolver is not None:
        _resolver.client.close()
    _resolver = Resolver(client)
    written = ", ".join(f"{t.__name__} {i}" for t, i in ids.items())
    log.info("schema registry %s: writing ids %s", client.url, written)


def learn_schema(schema_id: int) -> bool:
    """Whether the codec knows ``schema_id`` now, after asking the registry if there is one
    (False when it did not answer)."""
    if _resolver is None:
        return False
    try:
        return _resolver.learn(schema_id)
    except RegistryUnavailable:
        return False


async def learn_ids(values: Iterable[bytes | None]) -> None:
    """Ask the registry, if there is one, for every id of ``values`` the codec does not know;
    raises RegistryUnavailable when it does not answer."""
    resolver = _resolver
    if resolver is None:
        return
    for value in values:
        if value is None or len(value) < codec.HEADER.size:
            continue
        magic, schema_id = codec.HEADER.unpack_from(value)
        if magic == codec.MAGIC_BYTE and schema_id not in codec.SCHEMAS_BY_ID:
            await asyncio.to_thread(resolver.learn, schema_id)
