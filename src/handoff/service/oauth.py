"""The OAuth tokens of a helpdesk integration, shared by every process that calls it.

`StoredTokens` keeps an integration's tokens in its row. A refresh takes a short lease on the
row first, so among every server and worker process exactly one refreshes at a time; the
others wait and read what it wrote. The new tokens are written in their own transaction the
moment they arrive, because a rotated refresh token that is not written down is lost.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import timedelta

import structlog

from handoff.helpdesks.errors import Unavailable
from handoff.helpdesks.oauth import Mint, OAuthTokens
from handoff.service.runtime import Handoff
from handoff.store import repositories as repo
from handoff.store.models import Integration, utcnow

log = structlog.get_logger(__name__)

LEASE_SECONDS = 30.0  # longest a refresh may hold the lease (beyond the HTTP timeout)
LEASE_POLL_SECONDS = 0.2

# One asyncio lock per integration per event loop: tasks of one process queue here, so only
# one of them polls the database lease.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


class StoredTokens:
    """An integration's tokens in its database row, refreshed once across processes."""

    def __init__(self, hf: Handoff, integration_id: str) -> None:
        self._hf = hf
        self._integration_id = integration_id

    async def token(self, mint: Mint, *, stale: str | None = None) -> OAuthTokens:
        locks = _locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(self._integration_id, asyncio.Lock()):
            deadline = asyncio.get_running_loop().time() + LEASE_SECONDS * 2
            while True:
                held, leased = await self._read_or_lease(stale)
                if held is not None and not leased:
                    return held
                if leased:
                    return await self._mint_and_keep(mint, held)
                if asyncio.get_running_loop().time() > deadline:
                    raise Unavailable("another process has been refreshing the tokens too long")
                await asyncio.sleep(LEASE_POLL_SECONDS)

    async def _read_or_lease(self, stale: str | None) -> tuple[OAuthTokens | None, bool]:
        """Return usable tokens, or take the refresh lease: (tokens held so far, leased)."""
        async with self._hf.transaction() as session:
            integration = await session.get(Integration, self._integration_id)
            if integration is None:
                raise Unavailable("the integration was removed")
            held = self._open(integration.tokens)
            if held is not None and held.usable() and held.access_token != stale:
                return held, False
            now = utcnow()
            leased = await repo.lease_token_refresh(
                session,
                self._integration_id,
                now=now,
                until=now + timedelta(seconds=LEASE_SECONDS),
            )
            return (held, True) if leased else (None, False)

    async def _mint_and_keep(self, mint: Mint, held: OAuthTokens | None) -> OAuthTokens:
        try:
            fresh = await mint(held)
        except BaseException:
            await self._release(None)
            raise
        await self._release(fresh)
        log.info("oauth tokens refreshed", integration=self._integration_id)
        return fresh

    async def _release(self, fresh: OAuthTokens | None) -> None:
        sealed = self._hf.vault.seal(fresh.to_json()) if fresh is not None else None
        async with self._hf.transaction() as session:
            await repo.release_token_lease(session, self._integration_id, sealed)

    def _open(self, sealed: str | None) -> OAuthTokens | None:
        return OAuthTokens.from_json(self._hf.vault.open(sealed)) if sealed else None
