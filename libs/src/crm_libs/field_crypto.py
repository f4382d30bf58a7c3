"""Encryption at rest for sensitive fields.

Keys are Fernet keys (32 random bytes, URL-safe base64), listed in the settings; they rotate
without a migration: the first key encrypts, every listed key decrypts.

Tokens written now are ``v2:`` and AES-256-GCM under a key derived from the listed key (HKDF-
SHA256), with a random 96-bit nonce and the key's 4-byte id in front, so that the key is found
without trying each: one call into OpenSSL, where a Fernet token (AES-128-CBC, then an
HMAC-SHA256 tag, each set up anew per token) cost several times as much, which a spreadsheet
import of 100,000 files paid for every phone list. Random nonces keep a key safe for about
2^32 encryptions (NIST SP 800-38D), far beyond a store's files and their edits; rotate sooner.
Fernet tokens (``gAAAA…``) written before remain readable under the same keys.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crm_libs.problems import ProblemError

VERSION_2 = "v2:"
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4
_HKDF_INFO = b"crm field encryption v2 (AES-256-GCM)"


def _aead_key(fernet_key: bytes) -> tuple[bytes, AESGCM]:
    """(key id, cipher) of one listed key: the id names the key in a token, not its bytes."""
    raw = base64.urlsafe_b64decode(fernet_key)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    key_id = hashlib.sha256(b"crm field key id\x00" + derived).digest()[:_KEY_ID_BYTES]
    return key_id, AESGCM(derived)


class Nonces:
    """Random nonces for a batch of encryptions, read from the kernel together: one read of
    ``os.urandom`` per nonce, a system call, cost a spreadsheet import about as much as the
    encryption itself. Each nonce is handed out once. Made by the batch's caller and used in
    its one call only: never shared between threads, and never kept across a fork (both copies
    would hand out the same nonces)."""

    __slots__ = ("_random", "_at", "_count")

    def __init__(self, count: int) -> None:
        self._count = max(count, 1)
        self._random = b""
        self._at = 0

    def take(self) -> bytes:
        at, end = self._at, self._at + _NONCE_BYTES
        if end > len(self._random):
            self._random = os.urandom(_NONCE_BYTES * self._count)
            at, end = 0, _NONCE_BYTES
        self._at = end
        return self._random[at:end]


class FieldCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one field encryption key is needed")
        encoded = [k.encode() for k in keys]
        self._fernet = MultiFernet([Fernet(k) for k in encoded])
        aead = [_aead_key(k) for k in encoded]
        self._key_id, self._cipher = aead[0]
        self._by_id = dict(reversed(aead))  # the first key wins an (improbable) equal id

    def encrypt(self, plaintext: str, *, nonces: Nonces | None = None) -> str:
        """A ``v2:`` token of the text, under a nonce from ``nonces`` (a batch's) or drawn now."""
        nonce = nonces.take() if nonces is not None else os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, plaintext.encode(), None)
        return VERSION_2 + base64.urlsafe_b64encode(self._key_id + nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        try:
            if token.startswith(VERSION_2):
                return self._open_v2(token)
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, InvalidTag, ValueError) as exc:
            # Not the client's fault and not to be hidden: a key is missing from the settings.
            raise ProblemError(
                "A protected field cannot be read with the configured keys",
                status=500,
                title="Field encryption key missing",
            ) from exc

    def _open_v2(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token[len(VERSION_2) :])
        key_id, nonce = raw[:_KEY_ID_BYTES], raw[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
        cipher = self._by_id.get(key_id)
        if cipher is None:
            raise InvalidToken
        return cipher.decrypt(nonce, raw[_KEY_ID_BYTES + _NONCE_BYTES :], None).decode()
