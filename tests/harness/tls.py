"""A throwaway PKI for API tests: a CA, a server certificate and a client certificate.

Made with the ``openssl`` command (the ``cryptography`` package is not a dependency of the
project). EC P-256 keys, valid for a day: enough for a test run, useless if they leak.
The server certificate names localhost, 127.0.0.1 and ::1, so a client may dial any of them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pki", "make_pki"]

_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
"""
_CLIENT_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
"""


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of the PEM files :func:`make_pki` wrote."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(directory: Path, *args: str) -> None:
    executable = shutil.which("openssl")
    if executable is None:
        raise RuntimeError("the openssl command makes the test certificates: apt-get install openssl")
    result = subprocess.run([executable, *args], cwd=directory, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")


#: A new unencrypted EC P-256 key (-nodes: gRPC cannot ask for a passphrase).
_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _new_key_and_request(directory: Path, name: str, subject: str) -> None:
    _openssl(directory, "req", "-new", *_NEW_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)


def _sign(directory: Path, name: str, extensions: str, serial: int) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    ca = ("-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", str(serial), "-days", "1", "-sha256")
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", *ca, "-extfile", f"{name}.ext", "-out", f"{name}.pem")


def make_pki(directory: Path, *, name: str = "edgecups-test") -> Pki:
    """Write ca.pem/ca.key, server.pem/server.key and client.pem/client.key into ``directory``.

    ``name`` goes into the subjects; two calls with different directories make two CAs
    that do not trust each other's certificates.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_extensions = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl(directory, "req", "-x509", "-new", *_NEW_KEY, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-sha256", "-subj", f"/CN={name} CA", *ca_extensions)  # fmt: skip
    _new_key_and_request(directory, "server", "/CN=localhost")
    _sign(directory, "server", _SERVER_EXTENSIONS, serial=2)
    _new_key_and_request(directory, "client", f"/CN={name} client")
    _sign(directory, "client", _CLIENT_EXTENSIONS, serial=3)
    return Pki(
        directory=directory,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
