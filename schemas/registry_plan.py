"""What FIML puts in a schema registry: subjects, schema texts, and an archive of fixed ids.

Rules:
- Subjects follow Confluent's TopicNameStrategy: a topic's values are under ``<topic>-value``.
- A schema is registered as one deterministic text, its ``.avsc`` file as compact JSON with
  the file's key order (:func:`schema_text`). Registries without canonical hashing (Apicurio's
  default, which must stay) take another text of the same schema as a new version and id.
- A subject's versions are the codec's earlier schemas of that record type, by id, then the
  current one; a registry seeded with :func:`apicurio_archive` gives them the codec's fixed
  ids, so records written without a registry resolve through it too.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO

from schemas.codec import EARLIER_SCHEMA_IDS, SCHEMA_IDS, load_schema
from schemas.topics import RECORD_TOPICS, TopicRole

APICURIO_SYSTEM = {
    "systemVersion": "2.4.2.Final",
    "systemName": "apicurio-registry",
    "systemDescription": "FIML schemas with the codec's fixed ids",
    "exportVersion": "1.0",
    "exportedBy": "",
}


@dataclass(frozen=True)
class SubjectVersion:
    """One version of a subject: its schema's fixed codec id and registered text."""

    subject: str
    schema_id: int
    text: str


def subject(topic: str) -> str:
    """The subject of a topic's record values (TopicNameStrategy)."""
    return f"{topic}-value"


def schema_text(filename: str) -> str:
    """The one text under which the ``.avsc`` file ``filename`` is registered."""
    return json.dumps(load_schema(filename), separators=(",", ":"))


def codec_versions(topic: Callable[[TopicRole], str]) -> list[SubjectVersion]:
    """Every subject version of the codec's schemas that a topic holds (``RECORD_TOPICS``),
    oldest first per subject.

    ``topic`` names the topic of a role, e.g. ``Settings.topic``.
    """
    versions = []
    for record_type, (current_id, filename) in SCHEMA_IDS.items():
        if record_type not in RECORD_TOPICS:
            continue
        name = subject(topic(RECORD_TOPICS[record_type]))
        earlier = sorted(
            (schema_id, earlier_file)
            for schema_id, (earlier_type, earlier_file) in EARLIER_SCHEMA_IDS.items()
            if earlier_type is record_type
        )
        for schema_id, source in [*earlier, (current_id, filename)]:
            versions.append(SubjectVersion(name, schema_id, schema_text(source)))
    return versions


def apicurio_archive(versions: Iterable[SubjectVersion], created_on_ms: int) -> bytes:
    """An Apicurio Registry 2.x export (``POST /apis/registry/v2/admin/import``) of
    ``versions`` whose content ids, the ids of the Confluent API, are their ``schema_id``.

    The archive also sets the global compatibility rule to BACKWARD. ``created_on_ms`` is
    the creation time it records; the bytes depend only on the arguments.
    """
    entries: dict[str, str | bytes] = {
        "manifest.Manifest.json": json.dumps({**APICURIO_SYSTEM, "exportedOn": created_on_ms}),
        "rules/COMPATIBILITY.GlobalRule.json": json.dumps(
            {"ruleType": "COMPATIBILITY", "configuration": "BACKWARD"}
        ),
    }
    by_subject: dict[str, list[SubjectVersion]] = {}
    for version in versions:
        by_subject.setdefault(version.subject, []).append(version)
    global_id = 0
    for name, history in by_subject.items():
        for number, version in enumerate(history, 1):
            data = version.text.encode()
            digest = hashlib.sha256(data).hexdigest()
            # Apicurio reads a content's .json before its .data, or skips the rest silently.
            entries[f"content/{digest}.Content.json"] = json.dumps(
                {
                    "contentId": version.schema_id,
                    "canonicalHash": digest,
                    "contentHash": digest,
                    "artifactType": "AVRO",
                    "serializedReferences": None,
                }
            )
            entries[f"content/{digest}.Content.data"] = data
            global_id += 1
            entries[f"groups/default/artifacts/{name}/versions/{number}.ArtifactVersion.json"] = (
                json.dumps(
                    {
                        "globalId": global_id,
                        "groupId": None,
                        "artifactId": name,
                        "version": str(number),
                        "versionId": number,
                        "artifactType": "AVRO",
                        "state": "ENABLED",
                        "name": json.loads(version.text)["name"],
                        "description": None,
                        "createdBy": "",
                        "createdOn": created_on_ms,
                        "labels": None,
                        "properties": None,
                        "isLatest": number == len(history),
                        "contentId": version.schema_id,
                    }
                )
            )
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in entries.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()
