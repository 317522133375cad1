"""A single-node KRaft Apache Kafka broker on this machine, from Maven Central jars.

The jars are resolved once with Maven into ``<cache_dir>/kafka-<version>/libs``. The broker
keeps its log, configuration, ``broker.log`` and ``broker.pid`` in the data directory
(``FIML_KAFKA_DATA_DIR``, default ``<cache_dir>/broker``), formatted once.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.client import AIOKafkaClient, CoordinationType

from runtime.kafka_security import security_options
from runtime.local_tls import LocalTls, LocalTlsError, write_private
from runtime.processes import (
    daemon_pid,
    find_java,
    start_daemon,
    stop_daemon,
    tail,
)
from runtime.settings import Settings

MAIN_CLASS = "kafka.Kafka"
RUNTIME_FILES = Path(__file__).parent / "kafka_runtime"
READINESS_GROUP = "fiml-readiness"


class KafkaRuntimeError(RuntimeError):
    """The local broker could not be fetched, formatted, started or stopped."""


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 URL-safe base64 characters).

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: the storage tool would
    read such an id as an option and refuse to format (one id in 64 otherwise).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class LocalKafka:
    """Fetch, format, start, probe and stop the local broker that ``settings`` describe."""

    settings: Settings

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    @property
    def data_dir(self) -> Path:
        return self.settings.kafka_data_path

    @property
    def jar_dir(self) -> Path:
        return Path(self.settings.cache_dir) / f"kafka-{self.settings.kafka_version}" / "libs"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def tls(self) -> LocalTls:
        """The CA and broker certificate of a TLS listener (made on the first start)."""
        return LocalTls(self.data_dir / "tls")

    def client_settings(self) -> Settings:
        """The settings of a client of this broker: its address and, for TLS, its CA unless
        ``FIML_KAFKA_SSL_CAFILE`` names one."""
        cafile = self.settings.kafka_ssl_cafile
        if cafile is None and self.settings.kafka_security_protocol.endswith("SSL"):
            cafile = str(self.tls.ca_pem)
        return dataclasses.replace(
            self.settings, kafka_bootstrap=self.bootstrap, kafka_ssl_cafile=cafile
        )

    def fetch_jars(self) -> Path:
        """Resolve the broker's jars with Maven unless they are already cached."""
        done_marker = self.jar_dir / ".complete"
        if done_marker.exists():
            return self.jar_dir
        maven = shutil.which("mvn")
        if maven is None:
            raise KafkaRuntimeError("Maven (mvn) is needed to fetch the Kafka jars; install it")
        version = self.settings.kafka_version
        print(
            f"fetching Apache Kafka {version} jars from Maven Central (first run only)...",
            flush=True,
        )
        home = self.jar_dir.parent
        home.mkdir(parents=True, exist_ok=True)
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        pom = home / "pom.xml"
        pom.write_text(_runtime_file("pom.xml"))
        command = [
            maven,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise KafkaRuntimeError(
                f"Maven could not fetch Kafka {version}:\n"
                f"{result.stdout[-4000:]}{result.stderr[-2000:]}"
            )
        shutil.rmtree(self.jar_dir, ignore_errors=True)
        staging.rename(self.jar_dir)
        done_marker.touch()
        return self.jar_dir

    def running_pid(self) -> int | None:
        """The id of the broker started on this data directory, if it still runs."""
        return daemon_pid(self.pid_file, str(self.config_file))

    def start(
        self, *, stop_with_parent: bool = False, timeout: float = 90.0
    ) -> subprocess.Popen[bytes]:
        """Start the broker and wait until its metadata lists it.

        With ``stop_with_parent`` the broker gets SIGTERM when this process dies; without,
        it runs on in its own session until :meth:`stop`.
        """
        if self.running_pid() is not None:
            raise KafkaRuntimeError(f"a broker already runs on {self.data_dir} (fiml kafka stop)")
        jars = self.fetch_jars()
        self._write_config()
        self._format_storage(jars)
        java = _java()
        command = [
            java,
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:+AlwaysPreTouch",
            "-Djava.awt.headless=true",
            # Answer a client's TLS close_notify, which Java's TLS 1.3 does not by default:
            # a Python client closing a connection to the TLS listener otherwise waits 30 s
            # for it (the arbitration worker's first partition restore took 60 s).
            "-Djdk.tls.acknowledgeCloseNotify=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{jars}/*",
            MAIN_CLASS,
            str(self.config_file),
        ]
        return start_daemon(
            command,
            self.log_file,
            self.pid_file,
            stop_with_parent=stop_with_parent,
            ready=lambda process: self._await_ready(process, timeout),
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker of this data directory. Returns False if none was running."""
        return stop_daemon(self.pid_file, str(self.config_file), timeout)

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = _runtime_file("server.properties").format(
            port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            log_dir=self.data_dir / "log",
        )
        write_private(self.config_file, properties + security_properties(self))
        (self.data_dir / "log4j2.properties").write_text(_runtime_file("log4j2.properties"))

    def _format_storage(self, jars: Path) -> None:
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        command = [
            _java(),
            "-cp",
            f"{jars}/*",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.config_file),
            *scram_user_options(self.settings),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-3000:]
            raise KafkaRuntimeError(f"formatting {self.data_dir} failed:\n{output}")

    def _await_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise KafkaRuntimeError(
                    f"the broker exited with code {process.returncode}; last lines of "
                    f"{self.log_file}:\n{tail(self.log_file)}"
                )
            if asyncio.run(broker_ready(self.client_settings())):
                return
            time.sleep(0.3)
        raise KafkaRuntimeError(
            f"the broker was not ready after {timeout:.0f} s; see {self.log_file}"
        )


async def broker_ready(settings: Settings, timeout_ms: int = 2000) -> bool:
    """Whether the cluster at ``settings.kafka_bootstrap`` answers, lists a broker and
    coordinates consumer groups: the first coordinator lookup creates ``__consumer_offsets``,
    and until that is done a worker joining its group logs GroupCoordinatorNotAvailable
    errors."""
    bootstrap = settings.kafka_bootstrap or ""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_ms / 1000):
            pass
    except OSError:
        return False
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **security_options(settings)
    )
    try:
        await client.bootstrap()
        if not client.cluster.brokers():
            return False
        await client.coordinator_lookup(CoordinationType.GROUP, READINESS_GROUP)
        return True
    except Exception:
        return False
    finally:
        await client.close()


def security_properties(local: LocalKafka) -> str:
    """The broker settings of a client listener with ``FIML_KAFKA_SECURITY_PROTOCOL``,
    overriding the template's PLAINTEXT one (the last value of a key wins): TLS from
    :class:`LocalTls`, SCRAM users from the storage format (:func:`scram_user_options`).
    The broker talks to itself on the same listener as the configured user."""
    settings = local.settings
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return ""
    lines = [
        f"listeners={protocol}://127.0.0.1:{settings.kafka_port},"
        f"CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        f"advertised.listeners={protocol}://127.0.0.1:{settings.kafka_port}",
        f"inter.broker.listener.name={protocol}",
        f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{protocol}:{protocol}",
    ]
    if protocol.endswith("SSL"):
        try:
            tls = local.tls.ensure()
        except LocalTlsError as error:
            raise KafkaRuntimeError(str(error)) from error
        lines += [
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={tls.keystore}",
            f"ssl.keystore.password={tls.password}",
            f"ssl.key.password={tls.password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca_pem}",
        ]
    if protocol.startswith("SASL"):
        mechanism = settings.kafka_sasl_mechanism
        user, password = _scram_user(settings)
        lines += [
            f"sasl.enabled.mechanisms={mechanism}",
            f"sasl.mechanism.inter.broker.protocol={mechanism}",
            f"listener.name.{protocol.lower()}.{mechanism.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";',
        ]
    return "\n".join(["# FIML_KAFKA_SECURITY_PROTOCOL", *lines, ""])


def scram_user_options(settings: Settings) -> list[str]:
    """The storage tool's ``--add-scram`` option that creates the configured SASL user."""
    if not settings.kafka_security_protocol.startswith("SASL"):
        return []
    user, password = _scram_user(settings)
    return ["--add-scram", f"{settings.kafka_sasl_mechanism}=[name={user},password={password}]"]


def _scram_user(settings: Settings) -> tuple[str, str]:
    """The configured SASL user and password, checked for what the local broker takes."""
    if settings.kafka_sasl_mechanism == "PLAIN":
        raise KafkaRuntimeError("the local broker takes SCRAM-SHA-256 or SCRAM-SHA-512, not PLAIN")
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if not user or not password:
        raise KafkaRuntimeError(
            "a SASL listener needs FIML_KAFKA_SASL_USERNAME and FIML_KAFKA_SASL_PASSWORD"
        )
    if not all((c.isascii() and c.isalnum()) or c in "-_." for c in user) or not all(
        (c.isascii() and c.isalnum()) or c in "-_.~+/=" for c in password
    ):
        raise KafkaRuntimeError(
            "the local broker takes a user name of letters, digits, '-', '_' and '.', and a "
            "password of these and '~', '+', '/', '='"
        )
    return user, password


def _java() -> str:
    java = find_java()
    if java is None:
        raise KafkaRuntimeError(
            "Java 17 or newer is needed to run Kafka; install it or set JAVA_HOME"
        )
    return java


def _runtime_file(name: str) -> str:
    return (RUNTIME_FILES / name).read_text()
