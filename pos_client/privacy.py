"""Phone numbers at rest only as a keyed HMAC (the store's) or, in a terminal's offline
member cache, as a memory-hard KDF under the terminal's own key; identifiers in logs only
redacted."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors: memory is 128 * n * r bytes, time grows with n * r * p."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    @property
    def memory_bytes(self) -> int:
        return 128 * self.n * self.r


# One guess: 16 MiB and ~75-90 ms on the 2-core development machine (benchmarks/
# offline_lookup_cost.py prints it), against ~20 us for the HMAC it replaces.
OFFLINE_LOOKUP_COST = ScryptCost()
OFFLINE_LOOKUP_CONTEXT = b"pos-client offline member cache phone v1\x00"


class OfflineLookupKey:
    """How a terminal's offline member cache keys phone numbers: scrypt of the E.164 number,
    salted with this terminal's own key (lookup.key). A thief with the terminal's files has
    the salt too, so what protects the phones of cached members is the cost of each guess:
    memory-hard, so GPUs and many cores gain little. Computed only when a member is cached
    and at an offline phone lookup, never on a sale."""

    def __init__(self, key: bytes, cost: ScryptCost = OFFLINE_LOOKUP_COST) -> None:
        if len(key) < 16:
            raise ValueError("the offline lookup key must be at least 16 bytes")
        self._salt = OFFLINE_LOOKUP_CONTEXT + key
        self.cost = cost

    def phone_key(self, e164: str) -> str:
        digest = hashlib.scrypt(
            e164.encode(),
            salt=self._salt,
            n=self.cost.n,
            r=self.cost.r,
            p=self.cost.p,
            maxmem=self.cost.memory_bytes + 2**20,
            dklen=32,
        )
        return digest.hex()

    def lookup_value(self, identity: Identity) -> str:
        """The value cached for an identity: the KDF for phones, the canonical value otherwise."""
        if identity.kind is IdentityKind.PHONE:
            return self.phone_key(identity.value)
        return identity.value

    def __repr__(self) -> str:
        return f"OfflineLookupKey(<key hidden>, {self.cost})"


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, creating it (mode 0600) with a random key on first use. Only a
    regular file is read, and only its first KiB (a FIFO would block, /dev/zero never end)."""
    try:
        if path.exists() and not path.is_file():
            raise ValueError(f"{path}: not a regular file")
        with path.open("rb") as handle:
            text = handle.read(1024).decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        if not path.parent.exists():  # a folder made for it is private; an existing one
            private_dir(path.parent)  # (the server's working folder, /etc) is left as it is
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
