"""Test keys for wallet passes, made with `cryptography`: a stand-in for Apple's WWDR
intermediate (a CA), a pass certificate it signed, and a Google service-account key file.
Written as the store would keep them (PEM files, a JSON key file), never committed."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PassKeys:
    apple_cert: Path
    apple_key: Path
    wwdr: Path
    google_key_file: Path
    google_public_pem: Path


def make_pass_keys(folder: Path) -> PassKeys:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Test WWDR"))
        .issuer_name(name("Test WWDR"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("Pass Type ID: pass.test.loyalty"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    plain = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    paths = PassKeys(
        folder / "pass.pem",
        folder / "pass.key",
        folder / "wwdr.pem",
        folder / "google-service-account.json",
        folder / "google-public.pem",
    )
    paths.apple_cert.write_bytes(cert.public_bytes(pem))
    paths.apple_key.write_bytes(key.private_bytes(pem, plain, none))
    paths.wwdr.write_bytes(ca.public_bytes(pem))
    google = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths.google_key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "wallet@test-project.iam.gserviceaccount.com",
                "private_key": google.private_bytes(pem, plain, none).decode(),
            }
        )
    )
    paths.google_public_pem.write_bytes(
        google.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for path in (paths.apple_key, paths.google_key_file):
        path.chmod(0o600)
    return paths


def apple_env(keys: PassKeys, work: Path) -> dict[str, str]:
    """A store server's settings for Apple passes signed with these keys."""
    return {
        "LOYALTY_SERVER_PASS_LINK_KEY_FILE": str(work / "pass-links.key"),
        "LOYALTY_SERVER_APPLE_PASS_TYPE_ID": "pass.test.loyalty",
        "LOYALTY_SERVER_APPLE_TEAM_ID": "TEAM123456",
        "LOYALTY_SERVER_APPLE_PASS_CERT": str(keys.apple_cert),
        "LOYALTY_SERVER_APPLE_PASS_KEY": str(keys.apple_key),
        "LOYALTY_SERVER_APPLE_WWDR_CERT": str(keys.wwdr),
    }


def started_pass_server(work: Path, env: dict[str, str]) -> Any:
    """A seeded store server (SQLite) with these pass settings, started; stop() it."""
    from loyalty_server.cli import migrate
    from pos_client.ledger import sqlite_url
    from tests.integration.server_helpers import ServerProcess

    work.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(sqlite_url(work / "store.sqlite"), work, **env)
    migrate(server.database_url)
    server.seed()
    server.start()
    return server
