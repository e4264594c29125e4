"""The authorization-server side of a fake helpdesk: codes, access tokens, refresh tokens.

Each fake speaks its vendor's wire format; this keeps the state they share. A refresh either
rotates (the old refresh token dies, as on Zendesk) or keeps the refresh token (HubSpot).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode


class OAuthGrants:
    """Thread-safe OAuth state for one fake account and its one OAuth client."""

    def __init__(
        self, *, client_id: str, client_secret: str, lifetime: int, rotate: bool, prefix: str
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime = lifetime
        self.rotate = rotate
        self.prefix = prefix
        self.codes: dict[str, str] = {}  # code → redirect_uri
        self.access_tokens: dict[str, float] = {}  # token → expiry (Unix time)
        self.refresh_tokens: set[str] = set()
        self.refreshes = 0
        self.delay = 0.0  # seconds the token endpoint takes, to widen races
        self._deny_next = False
        self._lock = threading.Lock()

    def deny_next(self) -> None:
        """Have the next approval answer as if the admin pressed Deny."""
        with self._lock:
            self._deny_next = True

    def expire_access_tokens(self) -> None:
        """Age every access token past its expiry (refresh tokens stay valid)."""
        with self._lock:
            self.access_tokens = {token: 0.0 for token in self.access_tokens}

    def live(self, access_token: str) -> bool:
        with self._lock:
            return self.access_tokens.get(access_token, 0.0) > time.time()

    def approve(self, redirect_uri: str, state: str) -> str:
        """Return where the approval page sends the browser back: a code, or access_denied."""
        with self._lock:
            denied, self._deny_next = self._deny_next, False
            code = uuid.uuid4().hex
            if not denied:
                self.codes[code] = redirect_uri
        answer = (
            {"error": "access_denied", "error_description": "The user denied the request"}
            if denied
            else {"code": code}
        )
        return f"{redirect_uri}?{urlencode({**answer, 'state': state})}"

    def client_ok(self, client_id: Any, client_secret: Any) -> bool:
        return client_id == self.client_id and client_secret == self.client_secret

    def exchange(self, code: Any, redirect_uri: Any) -> dict[str, Any] | None:
        """Issue the first tokens for a code; None when the code is unknown, used or misdirected."""
        with self._lock:
            if self.codes.pop(str(code), None) != redirect_uri:
                return None
            return self._issue(None)

    def refresh(self, refresh_token: Any) -> dict[str, Any] | None:
        """Issue new tokens for a live refresh token; None when it is unknown or rotated away."""
        with self._lock:
            if str(refresh_token) not in self.refresh_tokens:
                return None
            self.refreshes += 1
            if self.rotate:
                self.refresh_tokens.discard(str(refresh_token))
                return self._issue(None)
            return self._issue(str(refresh_token))

    def _issue(self, keep_refresh: str | None) -> dict[str, Any]:
        access = f"{self.prefix}at_{uuid.uuid4().hex}"
        refresh = keep_refresh or f"{self.prefix}rt_{uuid.uuid4().hex}"
        self.access_tokens[access] = time.time() + self.lifetime
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.lifetime}
