"""The member's card on their phone: an Apple Wallet store card (`.pkpass`) and a Google
Wallet loyalty object "save" link, both carrying the member's number as a QR code and
their balance, made by the store server (which holds the signing keys).

- Apple: a zip of pass.json, its images, manifest.json (the SHA-1 of every file) and
  `signature`, a detached PKCS#7 signature of the manifest by the store's pass certificate
  (with Apple's WWDR intermediate certificate), made with `cryptography`.
- Google: a JWT signed RS256 with the store's service-account key (`typ` "savetowallet",
  `aud` "google"), its payload one loyalty object; the link is pay.google.com/gp/v/save/JWT.

A kiosk asks for a short-lived link (`PassLinks`: an HMAC-signed token naming the member
and its expiry) and shows it as a QR code; the phone opens it, no terminal token needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GOOGLE_SAVE_URL = "https://pay.google.com/gp/v/save/"
LINK_TTL_S = 600  # a link shown on a kiosk is good for ten minutes


class PassesUnavailable(RuntimeError):
    """This server has no keys for that kind of pass; the message says what to set."""


MAX_KEY_FILE_BYTES = 64 * 1024


def read_key_file(path: Path) -> bytes:
    """A key or certificate file: a regular file (a FIFO would block, /dev/zero never
    ends), read bounded."""
    if not path.is_file():
        raise OSError(2, "not a regular file")
    with path.open("rb") as handle:
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise OSError(27, "larger than a key file")
    return data


@dataclass(frozen=True)
class PassHolder:
    """What a pass shows: never the phone number, the name masked as on receipts."""

    member_id: str
    display_name: str
    card_number: str
    balance: int
    tier_name: str


@dataclass(frozen=True)
class AppleSigner:
    pass_type_id: str  # pass.com.example.loyalty, as in the certificate
    team_id: str
    organization: str
    certificate: Any  # x509.Certificate
    private_key: Any
    wwdr: Any  # Apple's intermediate certificate

    @classmethod
    def from_files(
        cls,
        pass_type_id: str,
        team_id: str,
        organization: str,
        certificate: Path,
        key: Path,
        wwdr: Path,
    ) -> AppleSigner:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
            load_pem_private_key,
        )

        if not pass_type_id.strip() or not team_id.strip():
            raise PassesUnavailable("Apple passes need a pass type id and a team id")
        loaded: dict[str, Any] = {}
        for what, path, load in (
            ("pass certificate", certificate, x509.load_pem_x509_certificate),
            ("pass key", key, lambda data: load_pem_private_key(data, password=None)),
            ("WWDR certificate", wwdr, x509.load_pem_x509_certificate),
        ):
            try:
                loaded[what] = load(read_key_file(path))
            except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
                reason = getattr(exc, "strerror", None) or "not PEM of the right kind"
                raise PassesUnavailable(f"Apple {what} {path}: {reason}") from None
        signer = cls(
            pass_type_id,
            team_id,
            organization,
            loaded["pass certificate"],
            loaded["pass key"],
            loaded["WWDR certificate"],
        )
        now = datetime.now(UTC)
        cert = signer.certificate
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise PassesUnavailable(
                f"the Apple pass certificate is valid {cert.not_valid_before_utc:%Y-%m-%d} to"
                f" {cert.not_valid_after_utc:%Y-%m-%d}, not today"
            )
        try:  # the WWDR certificate given must be the one that issued the pass certificate
            cert.verify_directly_issued_by(signer.wwdr)
        except (ValueError, TypeError, InvalidSignature):
            raise PassesUnavailable(
                "the Apple WWDR certificate did not issue the pass certificate"
            ) from None

        def public(key: Any) -> bytes:
            return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))

        # A key that is not the certificate's signs passes no phone would accept: refused
        # at start, not found out from customers.
        if public(signer.private_key.public_key()) != public(signer.certificate.public_key()):
            raise PassesUnavailable("the Apple pass key is not the pass certificate's key")
        return signer


@dataclass(frozen=True)
class GoogleSigner:
    issuer_id: str  # the Google Wallet issuer account's number
    class_suffix: str  # the loyalty class made once in the Wallet console
    service_account: str  # the service account's e-mail (the JWT's issuer)
    private_key: Any
    program_name: str

    @classmethod
    def from_key_file(
        cls, path: Path, issuer_id: str, class_suffix: str, program_name: str
    ) -> GoogleSigner:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            document = json.loads(read_key_file(path))
            key = load_pem_private_key(document["private_key"].encode(), password=None)
            email = document["client_email"]
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            UnsupportedAlgorithm,
        ) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise PassesUnavailable(
                f"Google service-account key file unreadable ({reason}): expected the JSON"
                " key with client_email and private_key"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or not isinstance(email, str) or "@" not in email:
            raise PassesUnavailable(
                "Google service-account key file: expected an RSA key and its client_email"
            )
        return cls(issuer_id, class_suffix, email, key, program_name)


# ------------------------------------------------------------------ Apple


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), rgb).save(out, "PNG")
    return out.getvalue()


def pass_json(signer: AppleSigner, holder: PassHolder, program_name: str) -> dict[str, Any]:
    """pass.json for a store card (Apple's PassKit Package Format Reference)."""
    barcode = {
        "format": "PKBarcodeFormatQR",
        "message": holder.card_number,
        "messageEncoding": "iso-8859-1",
        "altText": holder.card_number,
    }
    return {
        "formatVersion": 1,
        "passTypeIdentifier": signer.pass_type_id,
        "serialNumber": holder.member_id,
        "teamIdentifier": signer.team_id,
        "organizationName": signer.organization,
        "description": program_name,
        "logoText": program_name,
        "foregroundColor": "rgb(255, 255, 255)",
        "backgroundColor": "rgb(32, 64, 96)",
        "storeCard": {
            "primaryFields": [{"key": "balance", "label": "Points", "value": holder.balance}],
            "secondaryFields": [{"key": "member", "label": "Member", "value": holder.display_name}],
            "auxiliaryFields": [{"key": "tier", "label": "Level", "value": holder.tier_name}],
            "backFields": [{"key": "number", "label": "Card", "value": holder.card_number}],
        },
        "barcodes": [barcode],
        "barcode": barcode,  # iOS 8 and older read this one
    }


def manifest_of(files: dict[str, bytes]) -> bytes:
    return json.dumps(
        {name: hashlib.sha1(data).hexdigest() for name, data in sorted(files.items())},
        indent=1,
    ).encode()


def sign_manifest(signer: AppleSigner, manifest: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(signer.certificate, signer.private_key, hashes.SHA256())
        .add_certificate(signer.wwdr)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


def apple_pass(signer: AppleSigner, holder: PassHolder, program_name: str) -> bytes:
    """The .pkpass file's bytes."""
    files = {
        "pass.json": json.dumps(pass_json(signer, holder, program_name), indent=1).encode(),
        "icon.png": _png(29, 29, (32, 64, 96)),
        "icon@2x.png": _png(58, 58, (32, 64, 96)),
        "logo.png": _png(160, 50, (32, 64, 96)),
    }
    manifest = manifest_of(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", manifest)
        archive.writestr("signature", sign_manifest(signer, manifest))
    return out.getvalue()


# ------------------------------------------------------------------ Google


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def google_object(signer: GoogleSigner, holder: PassHolder) -> dict[str, Any]:
    """A loyalty object (Google Wallet API's LoyaltyObject) for the member."""
    return {
        "id": f"{signer.issuer_id}.{holder.member_id.replace('-', '_')}",
        "classId": f"{signer.issuer_id}.{signer.class_suffix}",
        "state": "ACTIVE",
        "accountId": holder.card_number,
        "accountName": holder.display_name,
        "loyaltyPoints": {"label": "Points", "balance": {"int": holder.balance}},
        "barcode": {
            "type": "QR_CODE",
            "value": holder.card_number,
            "alternateText": holder.card_number,
        },
    }


def google_save_link(signer: GoogleSigner, holder: PassHolder, now: float | None = None) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "iss": signer.service_account,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now if now is not None else time.time()),
        "origins": [],
        "payload": {"loyaltyObjects": [google_object(signer, holder)]},
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = signer.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return GOOGLE_SAVE_URL + signing_input + "." + _b64url(signature)


# ------------------------------------------------------------------ short-lived links


class PassLinks:
    """Tokens for a kiosk's QR code: `member id . expiry . HMAC`, unguessable and short-lived;
    whoever holds one may fetch that member's pass until it expires, nothing else."""

    def __init__(self, secret: bytes, ttl_s: int = LINK_TTL_S) -> None:
        if len(secret) < 16:
            raise ValueError("a pass link secret has at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        return _b64url(hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:18])

    def issue(self, member_id: str, now: float | None = None) -> tuple[str, int]:
        """(token, expiry as a Unix time)."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        body = f"{_b64url(member_id.encode())}.{expires}"
        return f"{body}.{self._mac(body)}", expires

    def member_of(self, token: str, now: float | None = None) -> str | None:
        """The member a valid, unexpired token names; None for anything else."""
        if len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body), parts[2]):
            return None
        if int(parts[1]) < (now if now is not None else time.time()):
            return None
        try:
            return base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
