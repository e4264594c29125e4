"""WhatsApp: connecting an agent's business number (admin), and Meta's webhook for it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse

from handoff.service import admin, whatsapp
from handoff.service.ratelimit import WEBHOOKS_PER_IP
from handoff.service.whatsapp import ConnectForm
from handoff.web.deps import AdminAuth, HandoffDep, Session, TokenDep
from handoff.web.ratelimit import per_address
from handoff.web.responses import WhatsAppOut

router = APIRouter(prefix="/api/v1", tags=["whatsapp"])


@router.put("/agents/{agent_id}/channels/whatsapp", response_model=WhatsAppOut)
async def connect_whatsapp(
    agent_id: str, body: ConnectForm, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Connect (or reconnect) a WhatsApp business number after checking it with a real call.

    The token, app secret and verify token are stored encrypted and never returned. The
    answer carries the webhook URL and the steps that finish the setup at Meta.
    """
    connection = await whatsapp.connect(hf, token, agent_id, body)
    return whatsapp.connection_json(hf, connection)


@router.get("/agents/{agent_id}/channels/whatsapp", response_model=WhatsAppOut)
async def get_whatsapp(
    agent_id: str, hf: HandoffDep, session: Session, principal: AdminAuth
) -> dict[str, Any]:
    """Return the agent's WhatsApp connection, without secrets, and its webhook setup."""
    agent = await admin.get_agent(session, principal, agent_id)
    return whatsapp.connection_json(hf, await whatsapp.require_connection(session, agent))


@router.delete("/agents/{agent_id}/channels/whatsapp", status_code=204)
async def disconnect_whatsapp(agent_id: str, session: Session, principal: AdminAuth) -> Response:
    """Disconnect WhatsApp: its credentials are deleted and its webhook stops answering."""
    await whatsapp.disconnect(session, await admin.get_agent(session, principal, agent_id))
    return Response(status_code=204)


@router.get(
    "/channels/whatsapp/{connection_id}",
    response_class=PlainTextResponse,
    dependencies=[Depends(per_address(WEBHOOKS_PER_IP))],
)
async def whatsapp_handshake(connection_id: str, request: Request, hf: HandoffDep) -> str:
    """Answer Meta's verification request: the challenge as plain text, 403 on a wrong token."""
    return await whatsapp.handshake(hf, connection_id, dict(request.query_params))


@router.post(
    "/channels/whatsapp/{connection_id}", dependencies=[Depends(per_address(WEBHOOKS_PER_IP))]
)
async def whatsapp_webhook(connection_id: str, request: Request, hf: HandoffDep) -> dict[str, int]:
    """Take in a WhatsApp notification signed with the app secret (X-Hub-Signature-256).

    Messages are queued and answered from the outbox, so Meta gets its 200 at once; a
    redelivered message is taken in once; delivery statuses are acknowledged and dropped.
    An unknown connection answers 404 before the body is read.
    """
    await whatsapp.webhook_exists(hf, connection_id)
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    queued = await whatsapp.receive_webhook(hf, connection_id, body, headers)
    return {"queued": queued}
