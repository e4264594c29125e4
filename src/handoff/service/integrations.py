"""Connecting helpdesks, building their connectors, and applying what their webhooks say.

Connecting follows one path, for a first connection and a reconnection alike: validate the
platform's form, make one cheap real call with the credentials, and only then encrypt and
save them. Webhooks are verified before anything in them is read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog
from cryptography.fernet import InvalidToken
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.dispatch import JobHandler, LeasedJob
from handoff.domain import (
    NATIVE,
    PLATFORMS,
    EscalationStatus,
    HandbackReason,
    TicketEvent,
    TicketEventKind,
)
from handoff.helpdesks import HELPDESKS, Helpdesk

# Exported: the web layer builds the request it passes in, and may not import helpdesks.
from handoff.helpdesks import WebhookRequest as WebhookRequest
from handoff.helpdesks.errors import (
    BadSignature,
    HelpdeskError,
    InvalidCredentials,
    PartlyRead,
    Rejected,
)
from handoff.helpdesks.limits import RateLimit, limit_for
from handoff.helpdesks.oauth import AuthorizationCodeApp, MemoryTokens, OAuthTokens, TokenStore
from handoff.service import admin
from handoff.service.auth import Principal
from handoff.service.errors import (
    CannotConnect,
    Conflict,
    Invalid,
    NotFound,
    RefusedCredentials,
    TemporarilyUnavailable,
    Unauthorized,
    UnknownIntegration,
)
from handoff.service.lifecycle import transitions as lifecycle
from handoff.service.lifecycle.stages import HUMAN_STAGES, stage_of
from handoff.service.netguard import refuse_private_urls
from handoff.service.oauth import StoredTokens
from handoff.service.plain_errors import plain_message
from handoff.service.runtime import Handoff
from handoff.store import repositories as repo
from handoff.store.models import Agent, InboundEvent, Integration, OutboxJob, utcnow

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
        declared = (
            cls.credentials_model.model_fields.get(str(first["loc"][0])) if first["loc"] else None
        )
        raise Invalid(
            f"credentials.{field}", plain_message(first, declared and declared.title)
        ) from None


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
        {
            "platform": key,
            "title": cls.title,
            "description": cls.description,
            "form": cls.credentials_model.model_json_schema(),
        }
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


@dataclass(frozen=True, slots=True)
class Checked:
    """A connect form that passed its real call, ready to be saved."""

    platform: str
    form: BaseModel
    tokens: OAuthTokens | None  # tokens to save: a fresh approval's, or minted by the call
    keeps_approval: bool = False  # signs in with the tokens of the integration it replaces


async def connect(
    hf: Handoff, token: str | None, agent_id: str, platform: str, raw: Mapping[str, Any]
) -> Integration:
    """Check the credentials with a real call, then save them encrypted (or replace them).

    The call may take as long as the platform likes, so no transaction is open meanwhile: one
    short transaction reads what the form needs, and a second one saves after checking again
    that the admin may and the agent exists. Of two reconnects at once, the one saved last
    wins; of two first connects at once on PostgreSQL, the second answers 409. A form that
    signs in through OAuth approval reuses the tokens of the integration it replaces, if that
    used the same OAuth client at the same address; otherwise the admin starts with
    `start_authorization`.
    """
    async with hf.transaction() as session:
        agent = await admin.agent_for_admin(session, token, agent_id)
        cls = _helpdesk(platform)
        form = credentials_for(cls, raw)
        approved = None
        if _authorize_url(hf, cls, form, state="") is not None:
            existing = await integration_for_platform(session, agent.id, platform)
            approved = _approved_integration(hf, cls, agent, existing, form)
    await refuse_private_urls(hf.guard, form, prefix="credentials.")  # no transaction open
    held = MemoryTokens()  # what a form that mints its own tokens gets from the call
    # The approval's tokens are refreshed in their row, under its lease, if the call needs it:
    # a rotated refresh token is written down at once, whatever the check concludes.
    store: TokenStore = StoredTokens(hf, approved.id) if approved is not None else held
    await check_credentials(hf, cls, form, store)
    checked = Checked(cls.platform, form, held.current, keeps_approval=approved is not None)
    async with hf.transaction() as session:
        agent = await admin.agent_for_admin(session, token, agent_id)
        return await save_integration(hf, session, agent, checked)


def _approved_integration(
    hf: Handoff, cls: type[Helpdesk], agent: Agent, existing: Integration | None, form: BaseModel
) -> Integration:
    """Return the integration whose tokens `form` may sign in with, or say why it needs an
    approval of its own."""
    if existing is not None and _same_approval(hf, cls, existing, form):
        return existing
    moved = _moved_fields(hf, cls, existing, form)
    why = (
        f"this form sends requests somewhere else ({', '.join(moved)} changed), and tokens "
        "approved for one address are never sent to another; "
        if moved
        else ""
    )
    raise Invalid(
        "credentials.auth",
        f"{why}OAuth needs your approval on {cls.title} first: POST this form to "
        f"/api/v1/agents/{agent.id}/integrations/authorize and open the page it returns",
    )


# The non-secret form fields that say where requests, and the credentials on them, go.
_DESTINATION = re.compile(r"url|domain|host|audience|region|data_center", re.IGNORECASE)


def destination(form: BaseModel) -> dict[str, Any]:
    """Return the fields of a connect form that decide which hosts it talks to.

    Read from the field names (base_url, subdomain, instance_url, accounts_url, region, ...)
    and from any value that is a URL, so a new connector's form is covered without a list.
    """
    values = form.model_dump(mode="python")
    return {
        name: value
        for name, value in values.items()
        if not isinstance(value, SecretStr)
        and (_DESTINATION.search(name) or (isinstance(value, str) and "://" in value))
    }


def _stored_form(hf: Handoff, cls: type[Helpdesk], existing: Integration) -> BaseModel | None:
    if not existing.credentials:
        return None
    before = hf.vault.open(existing.credentials)["credentials"]
    try:
        return cls.credentials_model.model_validate(before)
    except ValidationError:
        return None  # saved by an older version whose form no longer reads: no reuse


def _moved_fields(
    hf: Handoff, cls: type[Helpdesk], existing: Integration | None, form: BaseModel
) -> list[str]:
    """Name the destination fields `form` changes from the stored one (none if nothing stored)."""
    before = _stored_form(hf, cls, existing) if existing is not None else None
    if before is None:
        return []
    old, new = destination(before), destination(form)
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def _same_approval(
    hf: Handoff, cls: type[Helpdesk], existing: Integration | None, form: BaseModel
) -> bool:
    """Return True when `existing` holds tokens for `form`'s OAuth client at its address."""
    if existing is None or not existing.tokens:
        return False
    before = _stored_form(hf, cls, existing)
    if before is None or getattr(before, "client_id", None) != getattr(form, "client_id", None):
        return False
    return not _moved_fields(hf, cls, existing, form)


async def check_credentials(
    hf: Handoff, cls: type[Helpdesk], form: BaseModel, tokens: TokenStore
) -> None:
    """Make the form's one real call; call it with no transaction open."""
    try:
        # The webhook secret plays no part in the call; the save picks the one to keep.
        await cls(form, http=hf.http, webhook_secret="", tokens=tokens).verify_credentials()
    except InvalidCredentials as error:
        raise RefusedCredentials("credentials", str(error)) from None
    except HelpdeskError as error:
        raise CannotConnect(error) from None


async def save_integration(
    hf: Handoff, session: AsyncSession, agent: Agent, checked: Checked
) -> Integration:
    """Seal and save a checked form, as the agent's only integration of its platform."""
    cls = _helpdesk(checked.platform)
    existing = await integration_for_platform(session, agent.id, checked.platform)
    # Reconnecting (a rotated API key) keeps the webhook secret already pasted into the
    # platform, so its webhooks keep verifying.
    webhook_secret = (
        hf.vault.open(existing.credentials)["webhook_secret"]
        if existing is not None and existing.credentials
        else secrets.token_urlsafe(24)
    )
    if checked.keeps_approval and not _same_approval(hf, cls, existing, checked.form):
        # Another connect replaced the approval this form was checked with, meanwhile.
        raise Conflict(f"{cls.title} was reconnected meanwhile; send the form again")
    integration = existing or Integration(agent_id=agent.id, platform=checked.platform)
    integration.status = "connected"
    integration.credentials = hf.vault.seal(
        {"credentials": reveal(checked.form), "webhook_secret": webhook_secret}
    )
    if not checked.keeps_approval:  # otherwise the row keeps its tokens, refreshed in place
        integration.tokens = hf.vault.seal(checked.tokens.to_json()) if checked.tokens else None
        integration.token_lease_until = None
    try:
        async with session.begin_nested():
            await repo.add(session, integration)
    except IntegrityError:
        # A first connect of the same platform committed its row since we looked (on
        # PostgreSQL; SQLite runs one writer at a time). Of two reconnects, the last saved wins.
        title = cls.title
        raise Conflict(f"{title} was connected at this very moment; send the form again") from None
    log.info("integration connected", integration=integration.id, platform=checked.platform)
    return integration


async def start_authorization(
    hf: Handoff, agent: Agent, platform: str, raw: Mapping[str, Any]
) -> str:
    """Return the platform's approval page for this connect form.

    The form travels inside `state`, sealed by the vault and good for STATE_TTL_SECONDS, so
    nothing half-connected is stored before the platform sends the admin back.
    """
    cls = _helpdesk(platform)
    form = credentials_for(cls, raw)
    await refuse_private_urls(hf.guard, form, prefix="credentials.")
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
        raise CannotConnect(error) from None
    held = MemoryTokens(tokens)  # the check may refresh (and rotate) them: keep what it ends with
    await check_credentials(hf, cls, form, held)  # no transaction open across the calls
    checked = Checked(cls.platform, form, held.current)
    async with hf.transaction() as session:
        agent = await session.get(Agent, pending["agent_id"])
        if agent is None:
            raise NotFound("agent not found")
        integration = await save_integration(hf, session, agent, checked)
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
        data["rate_limit"] = rate_limit_json(integration)
    return data


def rate_limit_json(integration: Integration) -> dict[str, Any] | None:
    """The API limit the outbox keeps to for this integration, and whose figure it is."""
    limit = limit_for(integration.platform, integration.rate_limit)
    if limit is None:
        return None
    return {**limit.to_json(), "source": "admin" if integration.rate_limit else "documented"}


async def set_rate_limit(
    session: AsyncSession, agent: Agent, platform: str, limit: tuple[int, float] | None
) -> Integration:
    """Keep the platform's calls under the admin's (calls, per_seconds), or, with None, under
    the platform's documented limit again."""
    integration = await integration_for_platform(session, agent.id, platform)
    if integration is None or platform == NATIVE:
        raise NotFound(f"{platform} is not connected to this agent")
    integration.rate_limit = None if limit is None else RateLimit(*limit).to_json()
    log.info("integration rate limit set", integration=integration.id, limit=integration.rate_limit)
    return integration


async def list_integrations(
    hf: Handoff, session: AsyncSession, agent: Agent
) -> list[dict[str, Any]]:
    """Return the agent's integrations as the admin API shows them; each external helpdesk
    with its health (what waits in the outbox for it, and its latest error)."""
    backlogs = await _backlogs(session, agent.id)
    now = utcnow()
    return [
        integration_json(hf, i)
        | ({} if i.platform == NATIVE else {"health": _health(backlogs.get(i.id), now)})
        for i in await repo.integrations_of(session, agent.id)
    ]


async def _backlogs(session: AsyncSession, agent_id: str) -> dict[str, repo.Backlog]:
    return {b.integration_id: b for b in await repo.integration_backlogs(session, agent_id)}


def _health(backlog: repo.Backlog | None, now: datetime) -> dict[str, Any]:
    """Say whether the helpdesk's jobs are failing: their latest error and what waits."""
    if backlog is None:
        return {
            "failing": False,
            "last_error": None,
            "last_error_at": None,
            "waiting": 0,
            "parked": 0,
            "oldest_waiting_seconds": 0.0,
        }
    at = backlog.last_error_at
    return {
        "failing": backlog.last_error is not None,
        "last_error": backlog.last_error,
        "last_error_at": at.isoformat() if at is not None else None,
        "waiting": backlog.waiting,
        "parked": backlog.parked,
        "oldest_waiting_seconds": round((now - backlog.oldest).total_seconds(), 1),
    }


async def retry_all(
    session: AsyncSession, principal: Principal, agent_id: str, integration_id: str
) -> dict[str, Any]:
    """Make the integration's parked jobs (with a fresh retry budget) and its backing-off
    jobs due now; return how many, and its health after. Asking twice retries nothing more.

    A job's error stays on it until a run succeeds, so the integration reads as failing
    until then.
    """
    agent = await admin.get_agent(session, principal, agent_id)
    integration = await session.get(Integration, integration_id)
    if integration is None or integration.agent_id != agent.id or integration.platform == NATIVE:
        raise UnknownIntegration("integration not found")
    now = utcnow()
    retried = await repo.revive_jobs(session, integration.id, now)
    if retried:
        log.info("integration jobs retried", integration=integration.id, jobs=retried)
    backlogs = await _backlogs(session, agent.id)
    return {"retried": retried, "health": _health(backlogs.get(integration.id), now)}


async def platform_options(
    hf: Handoff, token: str | None, agent_id: str, platform: str
) -> dict[str, list[dict[str, str]]]:
    """Return the values the connected platform offers for its connect-form fields."""
    async with hf.transaction() as session:
        agent = await admin.agent_for_admin(session, token, agent_id)
        integration = await integration_for_platform(session, agent.id, platform)
        if integration is None or platform == NATIVE:
            raise NotFound(f"{platform} is not connected to this agent")
        connector = connector_for(hf, integration)
    try:
        # Asked with no transaction open; the connector's token store opens its own.
        offered = await connector.options()
    except InvalidCredentials as error:
        raise RefusedCredentials("credentials", f"{error}; reconnect the integration") from None
    except HelpdeskError as error:
        raise CannotConnect(error) from None
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


async def receive_webhook(hf: Handoff, integration_id: str, request: WebhookRequest) -> Received:
    """Verify a helpdesk webhook, then apply each new event once; say what became of them.

    When the connector could read only part of the batch (a lookup on the platform failed),
    the events it could not read are queued for the outbox to read and apply later, and the
    batch is answered 200: the platform's own redelivery may stop before it recovers (HubSpot
    gives up after a day), while the outbox retries with backoff and parks what never reads,
    for an admin to see and retry. Nothing is duplicated: a queued read has one job per
    batch's unread events (a redelivery finds it by key), and an event is applied once,
    recognised by its id, whether it comes from a redelivery or the queued read. The read is
    queued before anything is applied, so an error meanwhile answers 5xx and the platform's
    redelivery finds what was done by those same keys.
    """
    async with hf.reading() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None or integration.platform == NATIVE:
            raise NotFound("integration not found")
        connector = connector_for(hf, integration)
    # Vendors that sign the URL they called sign the one the admin configured; a proxy may
    # have changed the one this process saw.
    request = replace(request, url=webhook_url(hf, integration))
    try:
        connector.verify_webhook(request)
        # Some platforms finish the check while parsing (signing keys fetched, the body
        # read back from the platform), so a forged delivery can still be refused here.
        events = await connector.parse_webhook(request)
        unread = None
    except PartlyRead as error:
        events, unread = error.events, error
    except BadSignature as error:
        log.warning("webhook signature rejected", integration=integration_id)
        raise Unauthorized(f"webhook signature rejected: {error}") from None
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        # RecursionError: JSON nested deeper than the parser goes, a signed body still.
        raise Invalid("body", f"not a {integration.platform} webhook payload: {error}") from None
    except Rejected as error:  # the connector found the body malformed
        raise Invalid("body", error.detail) from None
    except HelpdeskError as error:
        # A lookup the platform did not answer: its redelivery brings the event again.
        title = platform_title(integration.platform)
        raise TemporarilyUnavailable(f"the event could not be read from {title}: {error}") from None
    queued = 0
    if unread is not None:
        log.warning("webhook read in part", integration=integration_id, error=str(unread))
        async with hf.transaction() as session:
            await _queue_read(session, integration, unread.unread)
        queued = len(unread.failures)
    applied = 0
    for event in events:
        async with hf.transaction() as session:
            applied += await _apply(session, integration, event)
    return Received(applied=applied, queued=queued)


@dataclass(frozen=True, slots=True)
class Received:
    """What a webhook delivery did: events applied now, events queued to be read again."""

    applied: int
    queued: int


READ_WEBHOOK_JOB = "read_webhook"


async def _queue_read(session: AsyncSession, integration: Integration, body: bytes) -> None:
    """Queue a read of `body` (a batch's unread events) unless a redelivery queued it already."""
    key = f"{READ_WEBHOOK_JOB}:{integration.id}:{hashlib.sha256(body).hexdigest()}"
    if await repo.has_job(session, key):
        return
    job = OutboxJob(
        kind=READ_WEBHOOK_JOB,
        payload={"integration_id": integration.id, "body": body.decode()},
        idempotency_key=key,
    )
    try:
        async with session.begin_nested():
            await repo.add(session, job)
    except IntegrityError:
        pass  # a redelivery handled at the same moment queued it


class ReadWebhook:
    """Read again the webhook events a platform could not be asked about, then apply them."""

    def __init__(self, hf: Handoff) -> None:
        self.hf = hf

    async def perform(self, job: LeasedJob) -> list[TicketEvent]:
        async with self.hf.reading() as session:
            integration = await session.get(Integration, job.payload["integration_id"])
            if integration is None or integration.credentials is None:
                return []  # disconnected since: nothing left to apply it to
            connector = connector_for(self.hf, integration)
            url = webhook_url(self.hf, integration)
        # The body was verified on receipt and stored by us: no signature to check again.
        body = str(job.payload["body"]).encode()
        # A lookup failing again raises PartlyRead, which the outbox retries with backoff.
        return await connector.parse_webhook(WebhookRequest("POST", url, {}, body))

    async def apply(self, session: AsyncSession, job: LeasedJob, result: list[TicketEvent]) -> None:
        integration = await session.get(Integration, job.payload["integration_id"])
        if integration is None:
            return
        for event in result:
            await _apply(session, integration, event)

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        return None  # the parked job's error is the integration's health (admin API)


def job_handlers(hf: Handoff) -> dict[str, JobHandler]:
    return {READ_WEBHOOK_JOB: ReadWebhook(hf)}


async def _apply(session: AsyncSession, integration: Integration, event: TicketEvent) -> int:
    found = await repo.ticket_stretch_for_update(
        session, integration.agent_id, integration.platform, event.ticket_id
    )
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
    if (
        escalation.status != EscalationStatus.OPEN
        or stage_of(conversation, escalation) not in HUMAN_STAGES
    ):
        return 0  # the stretch is over: late replies do not reopen it
    agent = await session.get(Agent, conversation.agent_id)
    assert agent is not None
    if event.kind == TicketEventKind.REPLY and event.text.strip():
        await lifecycle.team_reply(
            session, conversation, agent, event.text, author_name=event.author_name
        )
    elif event.kind == TicketEventKind.SOLVED:
        await lifecycle.hand_back(session, conversation, escalation, HandbackReason.SOLVED)
    else:
        return 0
    return 1
