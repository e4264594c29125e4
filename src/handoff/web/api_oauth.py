"""OAuth approval for helpdesks: the admin starts it here, the platform sends the browser back.

The callback is opened by the admin's browser coming back from the platform, so it carries no
bearer token: the sealed, time-limited `state` is what proves the request is ours.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from handoff.service import admin, integrations
from handoff.service.errors import HandoffError
from handoff.web.deps import HandoffDep, TokenDep
from handoff.web.pages import templates
from handoff.web.responses import AuthorizationOut
from handoff.web.schemas import IntegrationIn

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.post("/agents/{agent_id}/integrations/authorize", response_model=AuthorizationOut)
async def authorize_integration(
    agent_id: str, body: IntegrationIn, hf: HandoffDep, token: TokenDep
) -> dict[str, Any]:
    """Start connecting a helpdesk with OAuth: open `authorize_url` to approve access there."""
    # Not `Session`: the form's URLs are resolved and checked with no transaction open.
    async with hf.reading() as session:
        agent = await admin.agent_for_admin(session, token, agent_id)
    url = await integrations.start_authorization(hf, agent, body.platform, body.credentials)
    return {"authorize_url": url, "redirect_uri": integrations.redirect_uri(hf)}


@router.get(integrations.CALLBACK_PATH.removeprefix("/api/v1"), response_class=HTMLResponse)
async def oauth_callback(
    request: Request,
    hf: HandoffDep,
    state: str = Query("", description="What handoff sent to the platform, sealed."),
    code: str | None = Query(None, description="The platform's authorization code."),
    error: str | None = Query(None),
    error_description: str | None = Query(None),
) -> HTMLResponse:
    """Finish connecting: trade the code for tokens and show the admin how it went."""
    if error or not code:
        reason = error_description or error or "the platform sent no authorization code"
        return _page(request, 400, ok=False, message=f"Access was not granted: {reason}.")
    try:
        agent, integration = await integrations.finish_authorization(hf, state=state, code=code)
    except HandoffError as failure:
        return _page(request, failure.status_code, ok=False, message=failure.message)
    title = integrations.platform_title(integration.platform)
    return _page(
        request,
        200,
        ok=True,
        message=f"{title} is connected to {agent.name}. You can close this tab.",
    )


def _page(request: Request, status: int, *, ok: bool, message: str) -> HTMLResponse:
    context = {"ok": ok, "message": message}
    return templates.TemplateResponse(request, "oauth.html", context, status_code=status)
