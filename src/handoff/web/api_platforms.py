"""The helpdesk platforms an agent can connect, with the connect form each one takes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from handoff.service import admin, integrations
from handoff.web.deps import HandoffDep, TokenDep

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/platforms")
async def list_platforms(hf: HandoffDep, token: TokenDep) -> list[dict[str, Any]]:
    """Return each helpdesk's `platform`, `title` and connect `form` (JSON schema).

    Settings → Integrations renders the form from it; secret fields are `writeOnly`.
    """
    async with hf.reading() as session:
        await admin.authenticate_admin(session, token)
    return integrations.platform_forms()
