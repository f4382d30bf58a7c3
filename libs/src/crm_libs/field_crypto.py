"""Encryption at rest for sensitive fields (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

Keys rotate without a migration: the first key encrypts, every listed key decrypts.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from crm_libs.problems import ProblemError


class FieldCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one field encryption key is needed")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            # Not the client's fault and not to be hidden: a key is missing from the settings.
            raise ProblemError(
                "A protected field cannot be read with the configured keys",
                status=500,
                title="Field encryption key missing",
            ) from exc
