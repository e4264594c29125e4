"""HTML pages: the landing page, the demo company site, the full-page help chat, the inbox
and the admin settings.

The pages are thin shells; the chat (``static/widget.js``) and the inbox (``static/inbox.js``)
talk to the JSON API. The app mounts ``router`` and serves ``/static`` from ``static/``.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from handoff import __version__ as _version
from handoff.service import channels
from handoff.service.admin import public_agent
from handoff.service.runtime import Handoff
from handoff.web.deps import HandoffDep

WEB_DIR = Path(__file__).parent
templates = Jinja2Templates(directory=WEB_DIR / "templates")
# Swagger UI's files come from a Python package and are served under /static/swagger, so the
# API docs work without internet.
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)

router = APIRouter(include_in_schema=False)


def _render(request: Request, name: str, **context: object) -> HTMLResponse:
    context.setdefault("version", _version)
    return templates.TemplateResponse(request, name, context)


async def _require_agent(hf: Handoff, agent_id: str) -> None:
    async with hf.reading() as session:
        await public_agent(session, agent_id)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    """Product landing page with links to the inbox and the API docs."""
    return _render(request, "index.html")


@router.get("/demo/{agent_id}", response_class=HTMLResponse)
async def demo(request: Request, agent_id: str, hf: HandoffDep) -> HTMLResponse:
    """A pretend customer web site that embeds the chat widget like a real customer would."""
    await _require_agent(hf, agent_id)
    return _render(request, "demo.html", agent_id=agent_id)


@router.get("/help/{agent_id}", response_class=HTMLResponse)
async def help_page(request: Request, agent_id: str, hf: HandoffDep) -> HTMLResponse:
    """The same chat as the widget, filling a full help page, on the channel the registry
    gives the widget's page mode."""
    await _require_agent(hf, agent_id)
    channel = channels.widget_modes()["page"]
    return _render(request, "help.html", agent_id=agent_id, channel=channel)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request) -> HTMLResponse:
    """The support agents' inbox (a single-page app over the tickets API)."""
    return _render(request, "inbox.html")


@router.get("/settings", response_class=HTMLResponse)
async def settings(request: Request, hf: HandoffDep) -> HTMLResponse:
    """Workspace admins' settings: integrations, the escalate action, widget, team, knowledge
    base, canned replies and each channel with an outside API. The knowledge base's limits
    come with the page, so it checks an upload before sending it."""
    return _render(request, "settings.html", limits=hf.settings)


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> HTMLResponse:
    """Interactive API documentation (Swagger UI), served from this process alone."""
    return _render(
        request,
        "docs.html",
        openapi_url=request.app.openapi_url,
        integrity=swagger_integrity(),
    )


@cache
def swagger_integrity() -> dict[str, str]:
    """Subresource-integrity hashes of the Swagger UI files the docs page loads."""
    return {name: _sri(SWAGGER_DIR / name) for name in ("swagger-ui.css", "swagger-ui-bundle.js")}


def _sri(path: Path) -> str:
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode()
