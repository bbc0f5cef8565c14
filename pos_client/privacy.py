"""Phone numbers at rest only as a keyed HMAC; identifiers in logs only redacted."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pos_client.domain import Identity, IdentityKind
from pos_client.files import private_dir

KEY_BYTES = 32


class PhoneHasher:
    """Keyed HMAC-SHA256 of an E.164 number. The key is store-wide, so every terminal and
    the store server find the same member without any of them holding the number."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the phone HMAC key must be at least 16 bytes")
        self._key = key

    def phone_key(self, e164: str) -> str:
        return hmac.new(self._key, e164.encode(), hashlib.sha256).hexdigest()

    def lookup_value(self, identity: Identity) -> str:
        """The value stored for an identity: HMAC for phones, the canonical value otherwise."""
        if identity.kind is IdentityKind.PHONE:
            return self.phone_key(identity.value)
        return identity.value

    def __repr__(self) -> str:
        return "PhoneHasher(<key hidden>)"


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, creating it (mode 0600) with a random key on first use."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        private_dir(path.parent)
        key = secrets.token_bytes(KEY_BYTES)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return key
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: the phone key file must hold hex bytes") from None
    if len(key) < 16:
        raise ValueError(f"{path}: the phone key must be at least 16 bytes")
    return key
