"""The helpdesk platforms and the channels an agent can connect, with the connect form each one
takes, and the words the pages use for reasons and channels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from handoff.domain import REASON_DESCRIPTIONS, REASON_TITLES
from handoff.service import channels, integrations
from handoff.web.deps import AdminAuth
from handoff.web.responses import ChannelFormOut, PlatformOut

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/platforms", response_model=list[PlatformOut])
async def list_platforms(_: AdminAuth) -> list[dict[str, Any]]:
    """Return each helpdesk's `platform`, `title` and connect `form` (JSON schema).

    Settings → Integrations renders the form from it; secret fields are `writeOnly`.
    """
    return integrations.platform_forms()


@router.get("/channels", response_model=list[ChannelFormOut])
async def list_channel_forms(_: AdminAuth) -> list[dict[str, Any]]:
    """Return each channel with an outside API: its `channel`, `title`, connect `form` (JSON
    schema) and the words of its tab. Settings builds a connect tab from each one, which
    reads and writes the connection at `/api/v1/agents/{agent_id}/channels/{channel}`."""
    return channels.connect_forms()


class Vocabulary(BaseModel):
    """What the pages call each escalation reason and each channel."""

    reasons: dict[str, str]  # reason code → what it means, in a line
    reason_titles: dict[str, str]  # reason code → its name on a chip, in a few words
    channels: dict[str, str]  # channel code → its title


@router.get("/vocabulary", response_model=Vocabulary, tags=["pages"])
async def vocabulary() -> Vocabulary:
    """Return the reasons and channels with their words: the inbox and Settings read them
    here, so a new reason or channel needs no change in the pages. The same for everyone."""
    return Vocabulary(
        reasons={reason.value: text for reason, text in REASON_DESCRIPTIONS.items()},
        reason_titles={reason.value: title for reason, title in REASON_TITLES.items()},
        channels=channels.titles(),
    )
