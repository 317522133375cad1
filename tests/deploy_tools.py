"""The two validators of the deployment tests that PyPI does not ship, fetched once.

- kustomize, built from its Go module with ``go install`` (the Go module proxy);
- Strimzi's CRDs: the test jar of ``io.strimzi:api`` on Maven Central carries the CRD YAMLs
  Strimzi generates from its API model, the same schemas the operator installs.

Both are cached under ``<FIML cache>/tools`` (``~/.cache/fiml/tools`` by default), outside
the repository. ``make deploy-tools`` (part of ``make test``) fetches them with
``python -m tests.deploy_tools``; the tests fetch them on first use too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

from runtime.settings import Settings

KUSTOMIZE_VERSION = "v5.8.1"
STRIMZI_VERSION = "0.51.0"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


class ToolError(RuntimeError):
    """A validator could not be fetched."""


def tools_dir() -> Path:
    """Where the fetched validators live."""
    return Path(Settings.from_env().cache_dir) / "tools"


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(
            f"{' '.join(command[:3])} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


def _fetch_into(target: Path, fetch: Callable[[Path], None]) -> None:
    """Run ``fetch`` on a staging directory, then move it to ``target`` in one step."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    fetch(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def kustomize() -> Path:
    """The kustomize binary, built with the Go toolchain on first use."""
    target = tools_dir() / f"kustomize-{KUSTOMIZE_VERSION}"
    binary = target / "kustomize"
    if not binary.exists():
        go = shutil.which("go")
        if go is None:
            raise ToolError("Go is needed to build kustomize for the deployment tests")
        print(f"building kustomize {KUSTOMIZE_VERSION} (first run only)...", flush=True)
        module = f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"
        _fetch_into(
            target,
            lambda staging: _run(
                [go, "install", module], env={**os.environ, "GOBIN": str(staging)}
            ),
        )
    return binary


def strimzi_jar() -> Path:
    """Strimzi's API test jar, resolved with Maven on first use."""
    target = tools_dir() / f"strimzi-api-{STRIMZI_VERSION}"
    jar = target / f"api-{STRIMZI_VERSION}-tests.jar"
    if not jar.exists():
        maven = shutil.which("mvn")
        if maven is None:
            raise ToolError("Maven (mvn) is needed to fetch Strimzi's CRDs")
        print(f"fetching Strimzi {STRIMZI_VERSION} CRDs (first run only)...", flush=True)
        _fetch_into(
            target,
            lambda staging: _run(
                [
                    maven,
                    "-B",
                    "-q",
                    f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                    f"-Dartifact=io.strimzi:api:{STRIMZI_VERSION}:jar:tests",
                    f"-DoutputDirectory={staging}",
                ]
            ),
        )
    return jar


def strimzi_crds() -> dict[str, dict]:
    """Strimzi's CustomResourceDefinitions of API version v1, by kind."""
    crds = {}
    with zipfile.ZipFile(strimzi_jar()) as jar:
        for name in jar.namelist():
            if name.startswith("crds/v1/") and name.endswith(".yaml"):
                crd = yaml.safe_load(jar.read(name))
                crds[crd["spec"]["names"]["kind"]] = crd
    return crds


if __name__ == "__main__":
    print(kustomize())
    print(strimzi_jar())
