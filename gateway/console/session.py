"""The console's session: the pasted API key, kept only in an encrypted cookie.

The cookie is AES-GCM (authenticated encryption: a tampered or foreign cookie
fails to open) of a small JSON document, so the key is neither readable nor
forgeable in the browser, and it is HttpOnly, so page JavaScript never sees it.
The AES key is derived (HKDF) from the service credential every Medic process
shares, so any gateway replica opens a cookie another one sealed, and a
restart does not log people out; without a credential (tests of the gateway
alone) a random key is made per process.

Each session carries its CSRF token; a login form gets a token of its own in a
short-lived pre-login cookie.
"""
from __future__ import annotations

import base64
import hmac
import os
import secrets
import time
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SESSION_COOKIE = "medic_console"
LOGIN_COOKIE = "medic_console_login"
FLASH_COOKIE = "medic_console_flash"
COOKIE_PATH = "/ui"
# A session lasts this long from login; the key is pasted again after.
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600
FLASH_SECONDS = 60
_NONCE_BYTES = 12


@dataclass(frozen=True)
class Session:
    key: str
    csrf: str
    expires_at: float


class CookieCodec:
    """Seals and opens cookie values; ``purpose`` is bound as associated data,
    so a value sealed for one cookie does not open as another."""

    def __init__(self, secret: str | None):
        material = secret.encode() if secret else os.urandom(32)
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"medic console cookie v1").derive(material)
        self._aead = AESGCM(key)

    def seal(self, purpose: str, payload: dict) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, orjson.dumps(payload), purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, purpose: str, value: str | None) -> dict | None:
        if not value or len(value) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            payload = orjson.loads(self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                                      purpose.encode()))
        except (ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), (int, float)):
            return None
        if payload["e"] <= time.time():
            return None
        return payload

    # --- the three cookies --------------------------------------------------------

    def new_session(self, key: str) -> tuple[Session, str]:
        session = Session(key=key, csrf=secrets.token_urlsafe(32), expires_at=time.time() + SESSION_SECONDS)
        return session, self.seal(SESSION_COOKIE, {"k": key, "c": session.csrf, "e": session.expires_at})

    def session(self, value: str | None) -> Session | None:
        payload = self.open(SESSION_COOKIE, value)
        if payload is None or not isinstance(payload.get("k"), str) or not isinstance(payload.get("c"), str):
            return None
        return Session(key=payload["k"], csrf=payload["c"], expires_at=payload["e"])

    def new_login_token(self) -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        return token, self.seal(LOGIN_COOKIE, {"c": token, "e": time.time() + LOGIN_FORM_SECONDS})

    def login_token(self, value: str | None) -> str | None:
        payload = self.open(LOGIN_COOKIE, value)
        return payload.get("c") if payload and isinstance(payload.get("c"), str) else None

    def flash(self, message: str, kind: str = "ok", undo: str = "") -> str:
        """``undo``: the console path that undoes what the message reports (a button beside it)."""
        return self.seal(FLASH_COOKIE, {"m": message[:500], "t": kind, "u": undo[:200],
                                        "e": time.time() + FLASH_SECONDS})

    def read_flash(self, value: str | None) -> tuple[str, str, str] | None:
        payload = self.open(FLASH_COOKIE, value)
        if payload is None or not isinstance(payload.get("m"), str):
            return None
        undo = payload.get("u")
        return payload["m"], payload.get("t", "ok"), undo if isinstance(undo, str) else ""


def same_token(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; a missing one never matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
