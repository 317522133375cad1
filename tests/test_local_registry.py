"""The local schema registry (runtime/registry.py): built once, started, restarted, stopped."""

from __future__ import annotations

import socket

import httpx
import pytest

from runtime.processes import pid_alive
from runtime.registry import APICURIO_VERSION, LocalRegistry, RegistryRuntimeError
from runtime.registry_client import SchemaRegistry
from runtime.testing import free_port
from schemas.registry_plan import SubjectVersion, schema_text
from tests.support_registry import registry_cache_dir, temporary_registry

pytestmark = pytest.mark.registry


def test_ids_survive_a_restart_and_stop_ends_the_process_by_pid(tmp_path):
    registry = LocalRegistry(registry_cache_dir(), tmp_path / "registry", port=free_port())
    text = schema_text("trade.avsc")
    process = registry.start()
    try:
        assert registry.running_pid() == process.pid
        info = httpx.get(f"{registry.url}/apis/registry/v2/system/info").json()
        assert info["version"] == APICURIO_VERSION
        with SchemaRegistry(registry.ccompat_url) as client:
            schema_id = client.register("trades-value", text)
        assert registry.stop() is True
        process.wait(5)
        assert not pid_alive(process.pid)
        assert registry.running_pid() is None and not registry.pid_file.exists()
        assert registry.stop() is False
        assert (tmp_path / "registry" / "registry.mv.db").exists()

        process = registry.start()
        with SchemaRegistry(registry.ccompat_url) as client:
            assert client.schema(schema_id) == text
            assert client.register("trades-value", text) == schema_id
        versions = httpx.get(f"{registry.ccompat_url}/subjects/trades-value/versions")
        assert versions.json() == [1]
    finally:
        registry.stop()
        process.wait(5)


def test_a_second_registry_on_the_same_data_dir_or_port_is_refused(tmp_path):
    with temporary_registry(tmp_path / "first") as first:
        same_data = LocalRegistry(registry_cache_dir(), first.data_dir, port=free_port())
        with pytest.raises(RegistryRuntimeError, match="already runs"):
            same_data.start()
        same_port = LocalRegistry(registry_cache_dir(), tmp_path / "second", port=first.port)
        with pytest.raises(RegistryRuntimeError, match="already in use"):
            same_port.start()
        assert httpx.get(f"{first.url}/health/ready").status_code == 200


def test_a_port_taken_by_another_program_is_refused(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        registry = LocalRegistry(registry_cache_dir(), tmp_path, port=other.getsockname()[1])
        with pytest.raises(RegistryRuntimeError, match=r"port \d+ on 127.0.0.1 is already in use"):
            registry.start()


def test_a_registry_that_exits_at_start_says_why(tmp_path):
    registry = LocalRegistry(registry_cache_dir(), tmp_path, port=free_port(), heap="1k")
    with pytest.raises(RegistryRuntimeError, match="exited with code") as error:
        registry.start(timeout=60)
    assert "heap" in str(error.value).lower()  # the JVM's own words, from registry.log
    assert registry.running_pid() is None


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    registry = LocalRegistry(registry_cache_dir(), tmp_path / "data", port=free_port())
    with pytest.raises(RegistryRuntimeError, match="Java 11 or newer is needed"):
        registry.start()


def test_missing_maven_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    registry = LocalRegistry(tmp_path / "empty-cache", tmp_path / "data")
    with pytest.raises(RegistryRuntimeError, match=r"Maven \(mvn\) is needed"):
        registry.fetch()


def test_a_seed_the_registry_does_not_keep_is_an_error(tmp_path):
    # two texts under one id: Apicurio imports the first, skips the second, still answers 204
    versions = [
        SubjectVersion("a-value", 1, schema_text("trade.avsc")),
        SubjectVersion("b-value", 1, schema_text("candle.avsc")),
    ]
    with (
        temporary_registry(tmp_path) as registry,
        pytest.raises(RegistryRuntimeError, match="did not keep id 1 of b-value"),
    ):
        registry.seed(versions)
