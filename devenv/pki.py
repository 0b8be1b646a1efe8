"""Certificates, keys and kubeconfigs of one dev environment, made with the `openssl` CLI.

Called by `cluster.up` before any component starts. One throw-away CA signs a serving certificate
for 127.0.0.1 (used by kube-apiserver, kube-controller-manager and kube-scheduler, so that every
health probe verifies TLS) and a client certificate per identity: the admin (group
`system:masters`), the controller manager and the scheduler (their RBAC bootstrap identities)
and kwok. A separate key pair signs ServiceAccount tokens. Keys are ECDSA P-256: fast to make.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devenv.errors import DevEnvError

SERVICE_CLUSTER_IP = "10.96.0.1"

_OPENSSL_CONFIG = f"""\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,IP:{SERVICE_CLUSTER_IP},DNS:localhost,DNS:kubernetes,\
DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    serving: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    kwok: KeyPair
    service_account_key: Path
    service_account_pub: Path


def create(directory: Path) -> Pki:
    """Makes a fresh PKI in `directory` (replacing any old one)."""
    if shutil.which("openssl") is None:
        raise DevEnvError("required tool `openssl` is not on PATH: run `make dev-tools`")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    log = directory / "openssl.log"
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)

    def openssl(*args: str) -> None:
        with log.open("a") as out:
            proc = subprocess.run(
                ["openssl", *args], cwd=directory, stdout=out, stderr=out, check=False
            )
        if proc.returncode != 0:
            raise DevEnvError(f"openssl {args[0]} failed (exit code {proc.returncode})", log)

    def key(name: str) -> Path:
        path = directory / f"{name}.key"
        openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
        )
        return path

    ca = KeyPair(directory / "ca.crt", key("ca"))
    openssl(
        "req", "-config", str(config), "-x509", "-new", "-key", str(ca.key),
        "-subj", "/CN=canary-dev-ca", "-days", "3650", "-extensions", "ca", "-out", str(ca.cert),
    )  # fmt: skip

    def issue(name: str, subject: str, extensions: str) -> KeyPair:
        pair = KeyPair(directory / f"{name}.crt", key(name))
        openssl(
            "req", "-config", str(config), "-x509", "-new", "-key", str(pair.key),
            "-CA", str(ca.cert), "-CAkey", str(ca.key), "-subj", subject, "-days", "3650",
            "-extensions", extensions, "-out", str(pair.cert),
        )  # fmt: skip
        return pair

    sa_key = key("service-account")
    sa_pub = directory / "service-account.pub"
    openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return Pki(
        ca=ca,
        serving=issue("serving", "/CN=127.0.0.1", "server"),
        admin=issue("admin", "/O=system:masters/CN=canary-dev-admin", "client"),
        controller_manager=issue(
            "controller-manager", "/CN=system:kube-controller-manager", "client"
        ),
        scheduler=issue("scheduler", "/CN=system:kube-scheduler", "client"),
        kwok=issue("kwok", "/O=system:masters/CN=kwok", "client"),
        service_account_key=sa_key,
        service_account_pub=sa_pub,
    )


def write_kubeconfig(path: Path, server: str, ca: Path, user: KeyPair, name: str) -> None:
    """A self-contained kubeconfig (certificates inline) for `user`; JSON is valid YAML."""

    def inline(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "canary-dev",
                "cluster": {"server": server, "certificate-authority-data": inline(ca)},
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": inline(user.cert),
                    "client-key-data": inline(user.key),
                },
            }
        ],
        "contexts": [{"name": "canary-dev", "context": {"cluster": "canary-dev", "user": name}}],
        "current-context": "canary-dev",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
