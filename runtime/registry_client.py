"""A small client of the Confluent Schema Registry API: register, compatibility, schemas by id.

It speaks the API of Confluent Schema Registry and of Apicurio Registry's ``/apis/ccompat/v7``.
Basic-auth credentials, given apart or in the URL, go with every request and into no message
or repr. Every failure raises :class:`RegistryError` with the HTTP status when there is one;
a schema that the subject's compatibility rule refuses raises :class:`IncompatibleSchemaError`,
known by its HTTP status 409 (Apicurio's body says ``error_code`` 0, Confluent's 409 or 40901).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY_LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)
# Confluent's error codes for a subject, or a version of it, that does not exist.
NO_SUCH_SUBJECT = frozenset({40401, 40402})
MAX_DETAIL = 300


class RegistryError(RuntimeError):
    """A request the registry refused or did not answer."""

    def __init__(
        self, message: str, status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class IncompatibleSchemaError(RegistryError):
    """The subject's compatibility rule refused the schema (HTTP 409)."""


class SchemaRegistry:
    """A registry at ``url`` (for Apicurio, ending in ``/apis/ccompat/v7``).

    ``timeout`` bounds each request in seconds. Schemas fetched by id are cached for the
    client's life: an id never changes its schema.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the schema registry URL must be an http(s) URL with a host")
        if parsed.userinfo:
            if username is not None:
                raise ValueError("registry credentials given twice: in the URL and apart")
            username, password = parsed.username, parsed.password
            parsed = parsed.copy_with(username=None, password=None)
        self.url = str(parsed).rstrip("/")
        self.timeout = timeout
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._http = httpx.Client(
            base_url=self.url, auth=auth, timeout=timeout, headers={"Accept": CONTENT_TYPE}
        )
        self._schemas: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"SchemaRegistry({self.url!r})"

    def __enter__(self) -> SchemaRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def register(self, subject: str, schema: str) -> int:
        """Register an Avro ``schema`` text under ``subject``; returns its schema id.

        The same text again returns the same id and makes no new version.
        """
        body = self._request("POST", f"/subjects/{_path(subject)}/versions", {"schema": schema})
        return int(body["id"])

    def set_compatibility(self, subject: str, level: str = "BACKWARD") -> None:
        """Set the compatibility rule of ``subject``; a subject may have it before a version."""
        if level not in COMPATIBILITY_LEVELS:
            raise ValueError(f"unknown compatibility level {level!r}")
        self._request("PUT", f"/config/{_path(subject)}", {"compatibility": level})

    def is_compatible(self, subject: str, schema: str) -> bool:
        """Whether the subject's rule would take ``schema`` after its latest version
        (True when it has no version yet)."""
        path = f"/compatibility/subjects/{_path(subject)}/versions/latest"
        try:
            body = self._request("POST", path, {"schema": schema})
        except RegistryError as error:
            if error.status == 404 and error.error_code in NO_SUCH_SUBJECT:
                return True
            raise
        return bool(body["is_compatible"])

    def schema(self, schema_id: int) -> str:
        """The Avro schema text of ``schema_id``; a RegistryError of status 404 if unknown."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        body = self._request("GET", f"/schemas/ids/{int(schema_id)}")
        if body.get("schemaType", "AVRO") != "AVRO":
            raise RegistryError(f"schema {schema_id} is {body['schemaType']}, not Avro")
        text = str(body["schema"])
        self._schemas[schema_id] = text
        return text

    def _request(self, method: str, path: str, body: dict[str, str] | None = None) -> Any:
        where = f"{method} {self.url}{path}"
        try:
            response = self._http.request(
                method,
                path,
                content=None if body is None else json.dumps(body),
                headers=None if body is None else {"Content-Type": CONTENT_TYPE},
            )
        except httpx.TimeoutException:
            raise RegistryError(f"{where}: no answer within {self.timeout} s") from None
        except httpx.HTTPError as error:
            raise RegistryError(f"{where}: {type(error).__name__}: {error}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and isinstance(answer, dict):
            return answer
        if response.is_success:
            raise RegistryError(
                f"{where}: not a schema registry answer "
                f"(HTTP {response.status_code}, {len(response.content)} bytes)"
            )
        detail = answer if isinstance(answer, dict) else {}
        message = str(detail.get("message") or response.text)[:MAX_DETAIL]
        error_type = IncompatibleSchemaError if response.status_code == 409 else RegistryError
        code = detail.get("error_code")
        raise error_type(
            f"{where}: HTTP {response.status_code}: {message}",
            response.status_code,
            code if isinstance(code, int) else None,
        )


def _path(subject: str) -> str:
    return quote(subject, safe="")
