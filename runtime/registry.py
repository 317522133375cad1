"""A Confluent-compatible schema registry on this machine: Apicurio Registry, from Maven Central.

Apicurio Registry is a Quarkus application: Maven Central has its jars, not a runnable server,
so the server is built once with Maven (``runtime/registry_runtime/pom.xml``, the Quarkus build
step) into ``<cache_dir>/apicurio-registry-<version>/runner`` (the runner jar and its
``lib/``), like the Kafka jars. The registry keeps its H2 database (``registry.mv.db``, so
subjects and schema ids survive a restart), ``registry.log`` and ``registry.pid`` in its data
directory. It listens on 127.0.0.1 only; the Confluent API is at ``/apis/ccompat/v7``.
:meth:`LocalRegistry.seed` gives an empty registry the codec's schemas with their fixed ids.

Why 2.4.2.Final and not 3.x: Maven Central, as reached when this was written, served only
some versions of each Apicurio module, and no 3.x release had them all. 3.3.3 (the only 3.x
with both the app and its parent POM) fails on ``apicurio-registry-schema-util-provider``
3.3.3, and ``apicurio-registry-contracts-rules``, ``-config-definitions``,
``-utils-import-export`` and ``-protobuf-schema-utilities`` are not served at 3.3.3 either;
3.0.9 and 3.3.2 lack their parent POM. Maven then reports unknown hosts (the extra
repositories Apicurio's POM declares), which hides the 404 on Central. The 3.3.3 jars are
also Java 21 bytecode. 2.4.2.Final is the newest 2.x whose modules are all served; it is Java
11 bytecode and serves the same ``/apis/ccompat/v7``. Two of its artifacts are replaced in the
pom: ``org.everit.json.schema:1.14.2`` (not on Central) by erosb's ``everit-json-schema``, and
``apicurio-common-app-components-config-index(-deployment)`` 0.1.18.Final (deployment module
not served) by 0.1.10.Final, which has the same classes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from runtime.processes import (
    daemon_pid,
    find_java,
    start_daemon,
    stop_daemon,
    tail,
)
from runtime.settings import Settings
from schemas.registry_plan import SubjectVersion, apicurio_archive

APICURIO_VERSION = "2.4.2.Final"
QUARKUS_VERSION = "2.16.4.Final"
CCOMPAT_PATH = "/apis/ccompat/v7"
IMPORT_PATH = "/apis/registry/v2/admin/import"
RUNNER_JAR = "registry-runtime-1-runner.jar"
POM_TEMPLATE = Path(__file__).parent / "registry_runtime" / "pom.xml"

MAVEN_BUILD = (
    f"package -B -q -ntp -Dapicurio.version={APICURIO_VERSION} "
    f"-Dquarkus.version={QUARKUS_VERSION} -Dquarkus.package.type=legacy-jar"
).split()
# Small and quick to start. The properties outrank the environment variables the app also
# reads (ENABLE_CCOMPAT_CANONICAL_HASH_MODE, ...): a canonical hash makes 2.4.2 serve schemas
# with their fields sorted by name, which decodes records wrongly; legacy ids are global ids,
# not the content ids Confluent clients expect; dynamic configuration would let a client
# change these.
JVM_OPTIONS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dquarkus.http.host=127.0.0.1",
    "-Dregistry.ccompat.use-canonical-hash=false",
    "-Dregistry.ccompat.legacy-id-mode.enabled=false",
    "-Dregistry.config.dynamic.allow-all=false",
)


class RegistryRuntimeError(RuntimeError):
    """The local registry could not be built, started, seeded or stopped."""


@dataclass(frozen=True)
class LocalRegistry:
    """Build, start, probe, seed and stop a registry on ``port`` with its data in ``data_dir``."""

    cache_dir: Path
    data_dir: Path
    port: int = 8081
    heap: str = "256m"

    @classmethod
    def of(cls, settings: Settings) -> LocalRegistry:
        """The local registry ``settings`` describe (``FIML_REGISTRY_*``)."""
        return cls(
            Path(settings.cache_dir),
            settings.registry_data_path,
            settings.registry_port,
            settings.registry_heap,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ccompat_url(self) -> str:
        """The base URL of the Confluent Schema Registry API."""
        return self.url + CCOMPAT_PATH

    @property
    def home(self) -> Path:
        return self.cache_dir / f"apicurio-registry-{APICURIO_VERSION}"

    @property
    def runner_jar(self) -> Path:
        return self.home / "runner" / RUNNER_JAR

    @property
    def log_file(self) -> Path:
        return self.data_dir / "registry.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "registry.pid"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:h2:file:{self.data_dir / 'registry'}"

    def fetch(self) -> Path:
        """Build the registry with Maven unless it is already cached; returns the runner jar."""
        runner = self.runner_jar.parent
        if (runner / ".complete").exists():
            return self.runner_jar
        maven = shutil.which("mvn")
        if maven is None:
            raise RegistryRuntimeError("Maven (mvn) is needed to build the registry; install it")
        print(
            f"building Apicurio Registry {APICURIO_VERSION} from Maven Central (first run only)...",
            flush=True,
        )
        self.home.mkdir(parents=True, exist_ok=True)
        target = self.home / "target"
        shutil.rmtree(target, ignore_errors=True)
        pom = self.home / "pom.xml"
        pom.write_text(POM_TEMPLATE.read_text())
        command = [maven, "-f", str(pom), *MAVEN_BUILD]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.home)
        if result.returncode != 0:
            raise RegistryRuntimeError(_maven_failure(result.stdout + result.stderr))
        staging = self.home / "runner.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        (target / RUNNER_JAR).rename(staging / RUNNER_JAR)
        (target / "lib").rename(staging / "lib")
        shutil.rmtree(runner, ignore_errors=True)
        staging.rename(runner)
        shutil.rmtree(target)
        (runner / ".complete").touch()
        return self.runner_jar

    def running_pid(self) -> int | None:
        """The id of the registry started on this data directory, if it still runs."""
        return daemon_pid(self.pid_file, self.jdbc_url)

    def start(
        self, *, stop_with_parent: bool = False, timeout: float = 90.0
    ) -> subprocess.Popen[bytes]:
        """Start the registry and wait until it is ready.

        With ``stop_with_parent`` it gets SIGTERM when this process dies; without, it runs on
        in its own session until :meth:`stop`.
        """
        if self.running_pid() is not None:
            raise RegistryRuntimeError(f"a registry already runs on {self.data_dir}")
        if _listening(self.port):
            raise RegistryRuntimeError(f"port {self.port} on 127.0.0.1 is already in use")
        jar = self.fetch()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            _java(),
            f"-Xmx{self.heap}",
            *JVM_OPTIONS,
            f"-Dquarkus.http.port={self.port}",
            f"-Dquarkus.datasource.jdbc.url={self.jdbc_url}",
            "-jar",
            str(jar),
        ]
        return start_daemon(
            command,
            self.log_file,
            self.pid_file,
            stop_with_parent=stop_with_parent,
            ready=lambda process: self._await_ready(process, timeout),
            cwd=self.data_dir,
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the registry of this data directory. Returns False if none was running."""
        return stop_daemon(self.pid_file, self.jdbc_url, timeout)

    def seed(self, versions: Sequence[SubjectVersion], timeout: float = 30.0) -> bool:
        """:func:`seed_apicurio` on this registry."""
        return seed_apicurio(self.url, versions, timeout, f"see {self.log_file}")

    def _await_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RegistryRuntimeError(
                        f"the registry exited with code {process.returncode}; last lines of "
                        f"{self.log_file}:\n{tail(self.log_file)}"
                    )
                try:
                    if client.get("/health/ready").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise RegistryRuntimeError(
            f"the registry was not ready after {timeout:.0f} s; see {self.log_file}"
        )


def seed_apicurio(
    root_url: str, versions: Sequence[SubjectVersion], timeout: float = 30.0, hint: str = ""
) -> bool:
    """Import ``versions`` with their fixed ids into the empty Apicurio Registry 2.x at
    ``root_url`` (without ``/apis/...``), then check them.

    Returns False, importing nothing, when the registry already has subjects: ids that
    records already carry must not move. Apicurio answers 204 even when it skipped part of
    an archive, so every id is read back.
    """
    archive = apicurio_archive(versions, created_on_ms=time.time_ns() // 1_000_000)
    with httpx.Client(base_url=root_url.rstrip("/"), timeout=timeout) as client:
        try:
            if _ok(client.get(CCOMPAT_PATH + "/subjects")).json():
                return False
            _ok(
                client.post(
                    IMPORT_PATH, content=archive, headers={"Content-Type": "application/zip"}
                )
            )
            found = [client.get(f"{CCOMPAT_PATH}/schemas/ids/{v.schema_id}") for v in versions]
        except httpx.HTTPError as error:
            raise RegistryRuntimeError(f"{root_url}: {type(error).__name__}: {error}") from None
    for version, answer in zip(versions, found, strict=True):
        if answer.status_code != 200 or answer.json().get("schema") != version.text:
            raise RegistryRuntimeError(
                f"the import did not keep id {version.schema_id} of {version.subject}; "
                f"{hint or 'see the registry log'}"
            )
    return True


def _ok(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise RegistryRuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code} {response.text[:500]}"
        )
    return response


def _maven_failure(output: str) -> str:
    """The error lines of a failed build, with the likely cause when an artifact is missing."""
    errors = [line for line in output.splitlines() if line.startswith("[ERROR]")]
    message = "\n".join(errors[:12] or output.splitlines()[-30:])[-4000:]
    if "Could not resolve" in output or "Could not find artifact" in output:
        message += (
            "\nAn artifact could not be resolved. Maven names the last repository it tried "
            "(Apicurio's POM declares extra ones, whose hosts may be unknown here); the usual "
            "cause is that Maven Central does not serve that artifact."
        )
    return f"Maven could not build Apicurio Registry {APICURIO_VERSION}:\n{message}"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _java() -> str:
    java = find_java()
    if java is None:
        raise RegistryRuntimeError(
            "Java 11 or newer is needed to run the registry; install it or set JAVA_HOME"
        )
    return java
