"""Tokens, passwords and the vault that encrypts integration credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def new_token(prefix: str) -> str:
    """Return a fresh bearer token; the prefix tells a reader what it opens."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


class Vault:
    """Encrypts secrets at rest with a Fernet key derived from the service's secret key."""

    def __init__(self, secret_key: str) -> None:
        key = base64.urlsafe_b64encode(
            hashlib.sha256(b"handoff-vault:" + secret_key.encode()).digest()
        )
        self._fernet = Fernet(key)

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def open(self, token: str, *, ttl: int | None = None) -> dict[str, Any]:
        """Decrypt; with `ttl`, refuse what was sealed more than `ttl` seconds ago."""
        result: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode(), ttl=ttl))
        return result
