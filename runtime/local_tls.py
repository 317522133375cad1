"""A certificate authority and a broker certificate for the local broker's TLS listener,
made with Java's ``keytool`` (Java runs the broker anyway, so nothing else is needed).

The CA signs one certificate for ``localhost`` and ``127.0.0.1``; clients trust ``ca.pem``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runtime.processes import find_java

VALIDITY_DAYS = "825"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (replacing it) readable by its owner only, never by others,
    even briefly."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


class LocalTlsError(RuntimeError):
    """``keytool`` could not make the certificates."""


@dataclass(frozen=True)
class LocalTls:
    """The TLS files in ``directory``: the CA (``ca.p12``, ``ca.pem``) and the broker's
    PKCS12 keystore (``broker.p12``), all under one generated store password."""

    directory: Path

    @property
    def ca_pem(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.directory / "broker.p12"

    @property
    def password_file(self) -> Path:
        return self.directory / "store-password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def ensure(self) -> LocalTls:
        """Make the CA and the broker certificate unless they are there already."""
        if self.keystore.exists() and self.ca_pem.exists():
            return self
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.password_file, secrets.token_urlsafe(18))
        ca_store, csr, signed = (self.directory / n for n in ("ca.p12", "broker.csr", "broker.pem"))
        for path in (ca_store, self.keystore):
            path.unlink(missing_ok=True)
        ca = ["-keystore", str(ca_store), "-storetype", "PKCS12"]
        broker = ["-keystore", str(self.keystore), "-storetype", "PKCS12"]
        key = ["-keyalg", "EC", "-groupname", "secp256r1", "-validity", VALIDITY_DAYS]
        self._keytool(
            "-genkeypair", "-alias", "ca", *ca, *key, "-dname", "CN=fiml local CA", "-ext", "bc:c"
        )
        self._keytool("-exportcert", "-rfc", "-alias", "ca", *ca, "-file", str(self.ca_pem))
        self._keytool("-genkeypair", "-alias", "broker", *broker, *key, "-dname", "CN=localhost")
        self._keytool("-certreq", "-alias", "broker", *broker, "-file", str(csr))
        self._keytool(
            "-gencert",
            "-rfc",
            "-alias",
            "ca",
            *ca,
            "-infile",
            str(csr),
            "-outfile",
            str(signed),
            "-validity",
            VALIDITY_DAYS,
            "-ext",
            "SAN=dns:localhost,ip:127.0.0.1",
            "-ext",
            "EKU=serverAuth,clientAuth",
        )
        self._keytool(
            "-importcert", "-noprompt", "-alias", "ca", *broker, "-file", str(self.ca_pem)
        )
        self._keytool("-importcert", "-alias", "broker", *broker, "-file", str(signed))
        csr.unlink()
        return self

    def _keytool(self, *args: str) -> None:
        java = find_java()
        if java is None:
            raise LocalTlsError("Java's keytool is needed to make the local certificates")
        keytool = str(Path(java).resolve().with_name("keytool"))
        result = subprocess.run(
            [keytool, *args, "-storepass:file", str(self.password_file)],  # not in ps
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise LocalTlsError(
                f"keytool {args[0]} failed: {(result.stdout + result.stderr)[-2000:]}"
            )
