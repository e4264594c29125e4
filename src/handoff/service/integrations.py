"""Connecting helpdesks, building their connectors, and applying what their webhooks say.

Connecting follows one path, for a first connection and a reconnection alike: validate the
platform's form, make one cheap real call with the credentials, and only then encrypt and
save them. Webhooks are verified before anything in them is read.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import structlog
from cryptography.fernet import InvalidToken
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.domain import (
    NATIVE,
    PLATFORMS,
    EscalationStatus,
    HandbackReason,
    Role,
    TicketEvent,
    TicketEventKind,
)
from handoff.helpdesks import HELPDESKS, Helpdesk
from handoff.helpdesks.errors import BadSignature, HelpdeskError, InvalidCredentials
from handoff.helpdesks.oauth import AuthorizationCodeApp, MemoryTokens, OAuthTokens
from handoff.service.errors import Conflict, HandoffError, Invalid, NotFound, Unauthorized
from handoff.service.oauth import StoredTokens
from handoff.service.posting import post_message
from handoff.service.runtime import Handoff
from handoff.service.stretch import hand_back
from handoff.store import repositories as repo
from handoff.store.models import Agent, Conversation, Escalation, InboundEvent, Integration

log = structlog.get_logger(__name__)

CALLBACK_PATH = "/api/v1/oauth/callback"
STATE_TTL_SECONDS = 15 * 60  # time the admin has on the platform's approval page


def reveal(model: BaseModel) -> dict[str, Any]:
    """Return the form's values with secrets in clear, for sealing in the vault only."""
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in model.model_dump(mode="python").items()
    }


def credentials_for(cls: type[Helpdesk], raw: Mapping[str, Any]) -> BaseModel:
    """Validate a connect form; a bad field is a 422 that names it."""
    try:
        return cls.credentials_model.model_validate(dict(raw))
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "credentials"
        raise Invalid(f"credentials.{field}", first["msg"]) from None


def _helpdesk(platform: str) -> type[Helpdesk]:
    if platform == NATIVE:
        raise Conflict("the built-in inbox is always connected")
    cls = HELPDESKS.get(platform)
    if cls is None:
        raise Invalid("platform", f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    return cls


def platform_title(platform: str) -> str:
    return HELPDESKS[platform].title if platform in HELPDESKS else platform


def platform_forms() -> list[dict[str, Any]]:
    """Return every helpdesk's connect form as JSON schema, for an admin UI to render.

    Secrets are `SecretStr` fields, which the schema marks `format: password` and `writeOnly`.
    """
    return [
        {"platform": key, "title": cls.title, "form": cls.credentials_model.model_json_schema()}
        for key, cls in HELPDESKS.items()
    ]


def redirect_uri(hf: Handoff) -> str:
    """The one callback URL an admin registers in every platform's OAuth client."""
    return hf.settings.resolved_public_url + CALLBACK_PATH


def _authorize_url(hf: Handoff, cls: type[Helpdesk], form: BaseModel, state: str) -> str | None:
    """Return the approval page when this form connects through OAuth approval, else None."""
    connector = cls(form, http=hf.http, webhook_secret="", tokens=MemoryTokens())
    if not isinstance(connector, AuthorizationCodeApp):
        return None
    return connector.authorize_url(redirect_uri(hf), state)


async def connect(
    hf: Handoff, session: AsyncSession, agent: Agent, platform: str, raw: Mapping[str, Any]
) -> Integration:
    """Check the credentials with a real call, then save them encrypted (or replace them).

    A form that signs in through OAuth approval reuses the tokens of the integration it
    replaces (same OAuth client); without them the admin starts with `start_authorization`.
    """
    cls = _helpdesk(platform)
    form = credentials_for(cls, raw)
    tokens = None
    if _authorize_url(hf, cls, form, state="") is not None:
        existing = await integration_for_platform(session, agent.id, platform)
        tokens = _tokens_for_same_client(hf, existing, form)
        if tokens is None:
            raise Invalid(
                "credentials.auth",
                f"OAuth needs your approval on {cls.title} first: POST this form to "
                f"/api/v1/agents/{agent.id}/integrations/authorize and open the page it returns",
            )
    return await save_integration(hf, session, agent, platform, form, tokens)


def _tokens_for_same_client(
    hf: Handoff, existing: Integration | None, form: BaseModel
) -> OAuthTokens | None:
    if existing is None or not existing.tokens or not existing.credentials:
        return None
    before = hf.vault.open(existing.credentials)["credentials"]
    if before.get("client_id") != getattr(form, "client_id", None):
        return None
    return OAuthTokens.from_json(hf.vault.open(existing.tokens))


async def save_integration(
    hf: Handoff,
    session: AsyncSession,
    agent: Agent,
    platform: str,
    form: BaseModel,
    tokens: OAuthTokens | None = None,
) -> Integration:
    """Verify the form (and tokens) with one real call, then seal and save them."""
    cls = _helpdesk(platform)
    existing = await integration_for_platform(session, agent.id, platform)
    # Reconnecting (a rotated API key) keeps the webhook secret already pasted into the
    # platform, so its webhooks keep verifying.
    webhook_secret = (
        hf.vault.open(existing.credentials)["webhook_secret"]
        if existing is not None and existing.credentials
        else secrets.token_urlsafe(24)
    )
    held = MemoryTokens(tokens)  # the check may refresh (and rotate) them: keep what it ends with
    try:
        await cls(
            form, http=hf.http, webhook_secret=webhook_secret, tokens=held
        ).verify_credentials()
    except InvalidCredentials as error:
        raise Invalid("credentials", f"invalid_auth: {error}") from None
    except HelpdeskError as error:
        raise HandoffError(f"cannot_connect: {error}", 502) from None
    integration = existing or Integration(agent_id=agent.id, platform=platform)
    integration.status = "connected"
    integration.credentials = hf.vault.seal(
        {"credentials": reveal(form), "webhook_secret": webhook_secret}
    )
    integration.tokens = hf.vault.seal(held.current.to_json()) if held.current else None
    integration.token_lease_until = None
    await repo.add(session, integration)
    log.info("integration connected", integration=integration.id, platform=platform)
    return integration


def start_authorization(hf: Handoff, agent: Agent, platform: str, raw: Mapping[str, Any]) -> str:
    """Return the platform's approval page for this connect form.

    The form travels inside `state`, sealed by the vault and good for STATE_TTL_SECONDS, so
    nothing half-connected is stored before the platform sends the admin back.
    """
    cls = _helpdesk(platform)
    form = credentials_for(cls, raw)
    state = hf.vault.seal({"agent_id": agent.id, "platform": platform, "credentials": reveal(form)})
    url = _authorize_url(hf, cls, form, state)
    if url is None:
        raise Invalid("credentials.auth", f"this {cls.title} form does not sign in with OAuth")
    return url


async def finish_authorization(hf: Handoff, *, state: str, code: str) -> tuple[Agent, Integration]:
    """Trade the platform's code for tokens, check them, and save the integration."""
    try:
        pending = hf.vault.open(state, ttl=STATE_TTL_SECONDS)
    except InvalidToken:
        raise Invalid("state", "this approval link expired or was altered; start again") from None
    cls = _helpdesk(str(pending.get("platform")))
    form = credentials_for(cls, pending["credentials"])
    connector = cls(form, http=hf.http, webhook_secret="", tokens=MemoryTokens())
    if not isinstance(connector, AuthorizationCodeApp):
        raise Invalid("state", f"{cls.title} has no OAuth approval")
    try:
        tokens = await connector.exchange_code(code, redirect_uri(hf))
    except HelpdeskError as error:
        raise HandoffError(f"cannot_connect: {error}", 502) from None
    async with hf.transaction() as session:
        agent = await session.get(Agent, pending["agent_id"])
        if agent is None:
            raise NotFound("agent not found")
        integration = await save_integration(hf, session, agent, cls.platform, form, tokens)
    return agent, integration


def connector_for(hf: Handoff, integration: Integration) -> Helpdesk:
    """Build the integration's connector from its decrypted credentials."""
    cls = HELPDESKS.get(integration.platform)
    if cls is None or integration.credentials is None:
        raise LookupError(f"no connector for platform {integration.platform!r}")
    sealed = hf.vault.open(integration.credentials)
    credentials = cls.credentials_model.model_validate(sealed["credentials"])
    return cls(
        credentials,
        http=hf.http,
        webhook_secret=sealed["webhook_secret"],
        tokens=StoredTokens(hf, integration.id),
    )


def webhook_url(hf: Handoff, integration: Integration) -> str:
    return f"{hf.settings.resolved_public_url}/api/v1/webhooks/{integration.id}"


def integration_json(hf: Handoff, integration: Integration) -> dict[str, Any]:
    """Describe an integration, with where and how its webhooks are set up; never secrets."""
    data: dict[str, Any] = {
        "id": integration.id,
        "platform": integration.platform,
        "status": integration.status,
        "created_at": integration.created_at.isoformat(),
    }
    if integration.platform != NATIVE and integration.platform in HELPDESKS:
        url = webhook_url(hf, integration)
        data["webhook_url"] = url
        data["webhook_setup"] = connector_for(hf, integration).webhook_setup(url)
    return data


async def list_integrations(
    hf: Handoff, session: AsyncSession, agent: Agent
) -> list[dict[str, Any]]:
    """Return the agent's integrations as the admin API shows them."""
    return [integration_json(hf, i) for i in await repo.integrations_of(session, agent.id)]


async def platform_options(
    hf: Handoff, session: AsyncSession, agent: Agent, platform: str
) -> dict[str, list[dict[str, str]]]:
    """Return the values the connected platform offers for its connect-form fields."""
    integration = await integration_for_platform(session, agent.id, platform)
    if integration is None or platform == NATIVE:
        raise NotFound(f"{platform} is not connected to this agent")
    try:
        offered = await connector_for(hf, integration).options()
    except InvalidCredentials as error:
        raise Invalid("credentials", f"invalid_auth: {error}; reconnect the integration") from None
    except HelpdeskError as error:
        raise HandoffError(f"cannot_connect: {error}", 502) from None
    return {field: [c.model_dump() for c in choices] for field, choices in offered.items()}


async def integration_for_platform(
    session: AsyncSession, agent_id: str, platform: str
) -> Integration | None:
    for integration in await repo.integrations_of(session, agent_id):
        if integration.platform == platform:
            return integration
    return None


async def webhook_exists(hf: Handoff, integration_id: str) -> None:
    """Answer a platform's check of the webhook URL (Zoho Desk sends a GET first)."""
    async with hf.reading() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None or integration.platform == NATIVE:
            raise NotFound("integration not found")


async def receive_webhook(
    hf: Handoff, integration_id: str, body: bytes, headers: Mapping[str, str]
) -> int:
    """Verify a helpdesk webhook, then apply each new event once; return how many applied."""
    async with hf.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None or integration.platform == NATIVE:
            raise NotFound("integration not found")
        connector = connector_for(hf, integration)
    # Vendors that sign the URL they called sign the one the admin configured.
    headers = {**headers, "x-handoff-uri": webhook_url(hf, integration)}
    try:
        connector.verify_webhook(body=body, headers=headers)
        # Some platforms finish the check while parsing (signing keys fetched, the body
        # read back from the platform), so a forged delivery can still be refused here.
        events = await connector.parse_webhook(body, headers)
    except BadSignature as error:
        log.warning("webhook signature rejected", integration=integration_id)
        raise Unauthorized(f"webhook signature rejected: {error}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise Invalid("body", f"not a {integration.platform} webhook payload: {error}") from None
    applied = 0
    for event in events:
        async with hf.transaction() as session:
            applied += await _apply(session, integration, event)
    return applied


async def _apply(session: AsyncSession, integration: Integration, event: TicketEvent) -> int:
    # Ticket numbers are unique within one helpdesk account only: look among this
    # integration's agent's conversations.
    found = (
        await session.execute(
            select(Escalation, Conversation)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(
                Escalation.platform == integration.platform,
                Escalation.ticket_id == event.ticket_id,
                Conversation.agent_id == integration.agent_id,
            )
            .order_by(Escalation.stretch.desc())
            .limit(1)
            # A reply or a solve races the user's "back to the AI" and the timers: all of them
            # hold the conversation's row lock, and read the rows afresh once they have it.
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if found is None:
        log.info("webhook for an unknown ticket", integration=integration.id)
        return 0
    escalation, conversation = found
    try:
        async with session.begin_nested():
            await repo.add(
                session, InboundEvent(integration_id=integration.id, event_id=event.event_id)
            )
    except IntegrityError:
        return 0  # a redelivery: applied already
    if escalation.status != EscalationStatus.OPEN or conversation.owner != "human":
        return 0  # the stretch is over: late replies do not reopen it
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    if event.kind == TicketEventKind.REPLY and event.text.strip():
        await post_message(
            session,
            conversation,
            agent,
            Role.HUMAN_AGENT,
            event.text,
            author_name=event.author_name,
        )
    elif event.kind == TicketEventKind.SOLVED:
        await hand_back(session, conversation, escalation, HandbackReason.SOLVED)
    else:
        return 0
    return 1
