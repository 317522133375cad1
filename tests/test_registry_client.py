"""The registry client's HTTP behaviour that a local Apicurio cannot show: basic auth, silence.

Apicurio 2.x does basic auth only through an OpenID provider, so a small HTTP server on
127.0.0.1 stands in for a registry that demands credentials; everything else the client does
is tested against the real registry (tests/test_schema_registry.py).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from runtime.registry_client import RegistryError, SchemaRegistry
from runtime.testing import free_port

USER, PASSWORD = "reader", "s3cret-p@ss"
SCHEMA = '{"type":"string"}'


class Handler(BaseHTTPRequestHandler):
    """Serves schema 1 to requests with the right basic-auth header, 401 to others."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization")
        self.seen.append(authorization)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if authorization != expected:
            self.answer(401, {"error_code": 40101, "message": "Unauthorized"})
        elif self.path == "/schemas/ids/1":
            self.answer(200, {"schema": SCHEMA})
        else:
            self.answer(404, {"error_code": 40403, "message": "Schema not found"})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_credentials_are_sent_and_a_schema_is_fetched_once(server):
    with SchemaRegistry(f"http://{server}", username=USER, password=PASSWORD) as client:
        assert client.schema(1) == SCHEMA
        assert client.schema(1) == SCHEMA
    assert len(Handler.seen) == 1  # the second answer came from the cache


def test_credentials_in_the_url_are_used_and_never_shown(server):
    client = SchemaRegistry(f"http://{USER}:{PASSWORD.replace('@', '%40')}@{server}")
    with client:
        assert client.schema(1) == SCHEMA
        with pytest.raises(RegistryError) as missing:
            client.schema(2)
    assert (missing.value.status, missing.value.error_code) == (404, 40403)
    for shown in (repr(client), client.url, str(missing.value)):
        assert PASSWORD not in shown and "p%40ss" not in shown and USER not in shown


def test_wrong_credentials_are_a_401_that_does_not_repeat_them(server):
    client = SchemaRegistry(f"http://{server}", username=USER, password="wrong-pass")
    with client, pytest.raises(RegistryError) as refused:
        client.schema(1)
    assert refused.value.status == 401
    assert "wrong-pass" not in str(refused.value) and "Unauthorized" in str(refused.value)


def test_credentials_given_twice_are_refused():
    with pytest.raises(ValueError, match="given twice"):
        SchemaRegistry(f"http://{USER}:x@127.0.0.1:1", username=USER, password=PASSWORD)


def test_a_registry_that_never_answers_times_out():
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = SchemaRegistry(f"http://127.0.0.1:{port}", timeout=0.5)
        with client, pytest.raises(RegistryError, match=r"no answer within 0.5 s"):
            client.schema(1)


def test_a_registry_that_is_not_there_is_a_clear_error():
    client = SchemaRegistry(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(RegistryError, match="ConnectError") as refused:
        client.register("quotes-value", SCHEMA)
    assert refused.value.status is None
