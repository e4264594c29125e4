"""WhatsApp as a channel, the service's side: connecting a business number and taking in its
webhooks.

A verified webhook only queues one outbox job per message (keyed by its wamid) and answers 200
at once, as Meta wants; the job finds or starts the user's conversation and runs the usual
turn, where the owner rule applies; a message we cannot read (an image, a voice note) only
gets a request for text. Our side goes back like any channel's with an outside API:
`service/delivery.py` queues and runs it through the adapter, `channels.whatsapp.WhatsAppChannel`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.channels import whatsapp
from handoff.channels.base import Outgoing
from handoff.channels.whatsapp import Credentials, WhatsAppChannel, WhatsAppCloud
from handoff.dispatch import JobHandler, LeasedJob
from handoff.domain import MAX_MESSAGE_CHARS, Channel, Contact
from handoff.helpdesks.errors import Rejected
from handoff.service import admin, conversations, delivery
from handoff.service.channels import connection_form, shown_values
from handoff.service.errors import (
    CannotConnect,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RefusedCredentials,
    Unauthorized,
)
from handoff.service.i18n import say
from handoff.service.integrations import reveal
from handoff.service.netguard import refuse_private_urls
from handoff.service.runtime import Handoff
from handoff.service.wording import TEXT_ONLY
from handoff.store import repositories as repo
from handoff.store.models import Agent, ChannelConnection, OutboxJob, utcnow

log = structlog.get_logger(__name__)

CHANNEL = Channel.WHATSAPP.value
INBOUND_JOB = "whatsapp_inbound"
# The form the admin API takes; it is the adapter's own.
ConnectForm = Credentials


# --- connecting --------------------------------------------------------------------------


async def connect(
    hf: Handoff, token: str | None, agent_id: str, form: ConnectForm
) -> ChannelConnection:
    """Check the number and token with a real call, then save them sealed (or replace them).

    No transaction is open during the call: the admin's right is checked before it and again
    in the short transaction that saves; of two connects at once, the one saved last wins.
    """
    await refuse_private_urls(hf.guard, form)  # resolves names: no transaction is open
    async with hf.transaction() as session:
        await admin.agent_for_admin(session, token, agent_id)
    number = await _check(hf, form)
    async with hf.transaction() as session:
        agent = await admin.agent_for_admin(session, token, agent_id)
        connection = await repo.channel_connection(session, agent.id, CHANNEL) or ChannelConnection(
            agent_id=agent.id, channel=CHANNEL
        )
        connection.credentials = hf.vault.seal(
            {"form": reveal(form), "display_phone_number": number.display_phone_number}
        )
        try:
            async with session.begin_nested():
                await repo.add(session, connection)
        except IntegrityError:
            # A first connect of this agent committed since we looked (PostgreSQL only).
            raise Conflict(
                "WhatsApp was connected at this very moment; send the form again"
            ) from None
        if CHANNEL not in agent.channels:
            agent.channels = [*agent.channels, CHANNEL]  # a new list: JSON columns track it
    log.info("whatsapp connected", connection=connection.id, agent=agent.id)
    return connection


async def _check(hf: Handoff, form: ConnectForm) -> whatsapp.PhoneNumber:
    """Read the number with the form's token; call it with no transaction open."""
    try:
        return await WhatsAppCloud(form, http=hf.http).verify()
    except whatsapp.InvalidToken as error:
        raise RefusedCredentials("access_token", str(error)) from None
    except whatsapp.Rejected as error:
        # The only parameter of that call is the number's id.
        raise Invalid("phone_number_id", f"{error}") from None
    except whatsapp.WhatsAppError as error:
        raise CannotConnect(error) from None


def form_of(hf: Handoff, connection: ChannelConnection) -> ConnectForm:
    return connection_form(hf, connection, ConnectForm)


async def require_connection(session: AsyncSession, agent: Agent) -> ChannelConnection:
    connection = await repo.channel_connection(session, agent.id, CHANNEL)
    if connection is None:
        raise NotFound("WhatsApp is not connected to this agent")
    return connection


async def disconnect(session: AsyncSession, agent: Agent) -> None:
    """Forget the agent's WhatsApp credentials; its webhook URL stops answering."""
    await session.delete(await require_connection(session, agent))
    await session.flush()


def webhook_url(hf: Handoff, connection: ChannelConnection) -> str:
    return f"{hf.settings.resolved_public_url}/api/v1/channels/whatsapp/{connection.id}"


def connection_json(hf: Handoff, connection: ChannelConnection) -> dict[str, Any]:
    """Describe the connection and how to finish the setup at Meta; never a secret."""
    sealed = hf.vault.open(connection.credentials)
    form = ConnectForm.model_validate(sealed["form"])
    url = webhook_url(hf, connection)
    number = sealed.get("display_phone_number")
    return {
        "id": connection.id,
        "agent_id": connection.agent_id,
        "channel": CHANNEL,
        "name": number or f"Number {form.phone_number_id}",
        "summary": f"Phone number ID {form.phone_number_id} · template {form.template_name} "
        f"({form.template_language})",
        "values": shown_values(form),
        "phone_number_id": form.phone_number_id,
        "display_phone_number": number,
        "template_name": form.template_name,
        "template_language": form.template_language,
        "base_url": form.base_url,
        "created_at": connection.created_at.isoformat(),
        "webhook_url": url,
        "webhook_setup": [
            "In the Meta App Dashboard, open WhatsApp → Configuration → Webhook → Edit.",
            f"Callback URL: {url}",
            "Verify token: the verify token you entered here. Meta calls the URL once to "
            "check it; handoff echoes the challenge.",
            "Under Webhook fields, subscribe to 'messages'.",
            "Signatures are checked with the app secret you entered "
            "(App settings → Basic → App secret).",
            f"In WhatsApp Manager → Message templates, have the template "
            f"'{form.template_name}' ({form.template_language}) approved: it is sent instead "
            "of a reply that comes more than 24 hours after the user's last message.",
        ],
    }


# --- inbound -----------------------------------------------------------------------------


async def _connection(session: AsyncSession, connection_id: str) -> ChannelConnection:
    connection = await session.get(ChannelConnection, connection_id)
    if connection is None or connection.channel != CHANNEL:
        raise NotFound("WhatsApp connection not found")
    return connection


async def webhook_exists(hf: Handoff, connection_id: str) -> None:
    """Raise NotFound for an unknown connection, so its notification's body is never read."""
    async with hf.transaction() as session:
        await _connection(session, connection_id)


async def handshake(hf: Handoff, connection_id: str, params: Mapping[str, str]) -> str:
    """Answer Meta's webhook verification request with its challenge."""
    async with hf.reading() as session:
        form = form_of(hf, await _connection(session, connection_id))
    try:
        return whatsapp.verify_handshake(params, verify_token=form.verify_token.get_secret_value())
    except whatsapp.HandshakeRefused as error:
        raise Forbidden(f"webhook verification refused: {error}") from None


async def receive_webhook(
    hf: Handoff, connection_id: str, body: bytes, headers: Mapping[str, str]
) -> int:
    """Verify a notification, then queue each new user message once; return how many."""
    async with hf.reading() as session:
        connection = await _connection(session, connection_id)
        form = form_of(hf, connection)
    try:
        whatsapp.verify_signature(
            app_secret=form.app_secret.get_secret_value(), body=body, headers=headers
        )
    except whatsapp.MissingSignature as error:
        raise Unauthorized(f"webhook refused: {error}") from None
    except whatsapp.BadSignature as error:
        log.warning("whatsapp signature rejected", connection=connection_id)
        raise Forbidden(f"webhook refused: {error}") from None
    try:
        messages = whatsapp.parse_webhook(body)
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise Invalid("body", f"not a WhatsApp notification: {error}") from None
    queued = 0
    async with hf.transaction() as session:
        for message in messages:
            if message.phone_number_id != form.phone_number_id:
                # One Meta app may serve several numbers; this URL answers for one.
                log.info("whatsapp message for another number", connection=connection_id)
                continue
            queued += await _queue_once(session, _inbound_job(connection, message))
    return queued


def _inbound_job(connection: ChannelConnection, message: whatsapp.Inbound) -> OutboxJob:
    return OutboxJob(
        kind=INBOUND_JOB,
        payload={
            "connection_id": connection.id,
            "wa_id": message.wa_id,
            "message_id": message.message_id,
            "type": message.type,
            "text": message.text,
            "profile_name": message.profile_name,
        },
        idempotency_key=f"{INBOUND_JOB}:{connection.id}:{message.message_id}"[:200],
    )


async def _queue_once(session: AsyncSession, job: OutboxJob) -> int:
    """Add the job unless one with its key exists (Meta redelivers); return 1 if added."""
    if await repo.has_job(session, job.idempotency_key):
        return 0
    try:
        async with session.begin_nested():
            await repo.add(session, job)
    except IntegrityError:
        return 0  # the same delivery, queued by a concurrent request a moment ago
    return 1


class ReceiveMessage:
    """Take one inbound WhatsApp message into its conversation."""

    def __init__(self, hf: Handoff) -> None:
        self.hf = hf

    async def perform(self, job: LeasedJob) -> None:
        payload = job.payload
        if payload.get("text") is None:
            await self._ask_for_text(payload)
            return
        text = str(payload["text"]).strip()[:MAX_MESSAGE_CHARS]
        if not text:
            return
        async with self.hf.transaction() as session:
            conversation_id = await _conversation_for(self.hf, session, payload)
        # The message is stored once (client_id is its wamid), so a repeated run is harmless.
        client_id = _client_id(payload)
        await conversations.take_message(self.hf, conversation_id, text, client_id=client_id)

    async def _ask_for_text(self, payload: dict[str, Any]) -> None:
        """Answer an image, a voice note, a location with a request for text, and no more.

        The user just wrote, so the 24-hour window is open; nothing is stored, since there is
        nothing we could read or relay.
        """
        async with self.hf.reading() as session:
            connection = await session.get(ChannelConnection, payload["connection_id"])
            if connection is None:
                raise Rejected(404, "WhatsApp was disconnected before the message was answered")
            form = form_of(self.hf, connection)
            wa_id = str(payload["wa_id"])
            # In the language of the user's conversation on this number, if they have one.
            known = await repo.latest_conversation_of_contact(session, connection.id, wa_id)
            language = known.language if known else self.hf.settings.default_language
        # The user just wrote: the window is open, so the text itself goes out.
        asking = Outgoing(text=say(language, TEXT_ONLY), to=wa_id, last_heard=utcnow())
        with delivery.outbox_errors():
            await WhatsAppChannel(form, http=self.hf.http).deliver(asking)

    async def apply(self, session: AsyncSession, job: LeasedJob, result: Any) -> None:
        return None

    async def on_failed(self, session: AsyncSession, job: LeasedJob, error: str) -> None:
        log.error("whatsapp message not taken in", job=job.id, error=error)


async def _conversation_for(hf: Handoff, session: AsyncSession, payload: dict[str, Any]) -> str:
    """Return the agent's latest WhatsApp conversation with this user, or start one."""
    # Locking the connection row makes two first messages from one user start one
    # conversation between them.
    connection = await repo.connection_for_update(session, payload["connection_id"])
    if connection is None:
        raise Rejected(404, "WhatsApp was disconnected before the message was taken in")
    wa_id, name = str(payload["wa_id"]), payload.get("profile_name")
    # Only a conversation this number's webhook opened: never one a caller started elsewhere
    # with the same phone number.
    conversation = await repo.latest_conversation_of_contact(session, connection.id, wa_id)
    if conversation is not None:
        if name and not conversation.contact_name:
            conversation.contact_name = name
        return conversation.id
    contact = Contact(name=name, phone=f"+{wa_id}", external_id=wa_id)
    started, _, _ = await conversations.start_conversation(
        hf,
        session,
        agent_id=connection.agent_id,
        channel=CHANNEL,
        contact=contact,
        connection_id=connection.id,
    )
    return started.id


def _client_id(payload: dict[str, Any]) -> str:
    # wamids are about 60 characters; the column holds 100.
    return str(payload["message_id"])[-100:]


def job_handlers(hf: Handoff) -> dict[str, JobHandler]:
    """Return the WhatsApp inbound job handler by kind; deliveries are `delivery.py`'s."""
    return {INBOUND_JOB: ReceiveMessage(hf)}


def ordering_key(job: LeasedJob) -> str | None:
    """One user's messages to one number are taken in in the order they were written."""
    if job.kind != INBOUND_JOB:
        return None
    return f"whatsapp:{job.payload.get('connection_id')}:{job.payload['wa_id']}"
