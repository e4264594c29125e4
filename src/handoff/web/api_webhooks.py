"""Inbound helpdesk webhooks: one endpoint per integration, verified before it is read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from handoff.service import integrations
from handoff.web.deps import HandoffDep

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


@router.post("/webhooks/{integration_id}")
async def helpdesk_webhook(integration_id: str, request: Request, hf: HandoffDep) -> dict[str, Any]:
    """Apply a helpdesk's agent replies and solved/closed changes to its conversations.

    The platform's signature (or the secret shown in the integration's setup steps) is checked
    before the body is parsed; a redelivered event is applied once.
    """
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    # Some vendors sign the method and the URL they called (HubSpot v3).
    headers["x-handoff-method"] = request.method
    headers["x-handoff-uri"] = str(request.url)
    applied = await integrations.receive_webhook(hf, integration_id, body, headers)
    return {"applied": applied}
