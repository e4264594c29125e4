"""Inbound helpdesk webhooks: one endpoint per integration, verified before it is read."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from handoff.service import integrations
from handoff.service.integrations import WebhookRequest
from handoff.service.ratelimit import WEBHOOKS_PER_IP
from handoff.web.deps import HandoffDep
from handoff.web.ratelimit import per_address
from handoff.web.responses import WebhookOut

router = APIRouter(
    prefix="/api/v1", tags=["webhooks"], dependencies=[Depends(per_address(WEBHOOKS_PER_IP))]
)


@router.get("/webhooks/{integration_id}")
async def helpdesk_webhook_check(integration_id: str, hf: HandoffDep) -> dict[str, bool]:
    """Answer 200 to a platform checking the URL before it sends webhooks."""
    await integrations.webhook_exists(hf, integration_id)
    return {"ok": True}


@router.post("/webhooks/{integration_id}", response_model=WebhookOut)
async def helpdesk_webhook(integration_id: str, request: Request, hf: HandoffDep) -> dict[str, int]:
    """Apply a helpdesk's agent replies and solved/closed changes to its conversations.

    The platform's signature (or the secret shown in the integration's setup steps) is checked
    before the body is parsed; a redelivered event is applied once. An unknown integration
    answers 404 before the body is read. When the platform could not be asked about some
    events of a batch, the others are applied and those are queued to be read again by the
    outbox (`queued`), retried with backoff; the batch is answered 200 all the same.
    """
    await integrations.webhook_exists(hf, integration_id)
    delivered = WebhookRequest(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        body=await request.body(),
    )
    received = await integrations.receive_webhook(hf, integration_id, delivered)
    return {"applied": received.applied, "queued": received.queued}
