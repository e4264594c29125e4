"""The one contract every helpdesk connector implements, and what it is built from.

A connector is a pure adapter over one platform's HTTP API: it gets its credentials, an
`httpx.AsyncClient`, the webhook secret we generated for the integration and, for OAuth, the
`TokenStore` that keeps its tokens; it never touches the store itself. One module per platform,
always in this order: a `Credentials` model (the connect form), the connector class (a
`Connector` over that form) with its class attributes and `_setup`, then the methods of
`Helpdesk`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Generic, Protocol, TypeVar, cast

import httpx
from pydantic import BaseModel

from handoff.domain import Contact, Message, TicketEvent, TicketPacket, TicketRef
from handoff.helpdesks import common
from handoff.helpdesks.oauth import MemoryTokens, TokenStore

FormT = TypeVar("FormT", bound=BaseModel)


class Choice(BaseModel):
    """One value an admin may pick for a connect-form field, as the platform lists it."""

    value: str
    label: str


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound webhook as a connector sees it: what the platform sent, and where.

    Header names are lower-cased once here, since HTTP treats them case-insensitively and
    every connector would otherwise search for its headers in both spellings.
    """

    method: str
    url: str  # the public webhook URL the platform was given; some vendors sign it
    headers: Mapping[str, str]
    body: bytes

    def __post_init__(self) -> None:
        lowered = {name.lower(): value for name, value in self.headers.items()}
        object.__setattr__(self, "headers", MappingProxyType(lowered))

    def header(self, name: str) -> str | None:
        """Return the header's value, whatever the case of `name`; None when absent."""
        return self.headers.get(name.lower())


class Helpdesk(Protocol):
    """A helpdesk platform the Escalate to Human action can open tickets in."""

    platform: ClassVar[str]  # the registry key, e.g. "zendesk"
    title: ClassVar[str]  # what the admin sees, e.g. "Zendesk"
    description: ClassVar[str]  # what it is, in a line, for Settings → Integrations
    max_body_chars: ClassVar[int]  # the longest ticket body the platform takes
    credentials_model: ClassVar[type[BaseModel]]  # the connect form, validated at the edge

    def __init__(
        self,
        credentials: BaseModel,
        *,
        http: httpx.AsyncClient,
        webhook_secret: str,
        tokens: TokenStore | None = None,  # where OAuth tokens live; unused by static keys
    ) -> None: ...

    async def verify_credentials(self) -> None:
        """Make one cheap authenticated call; raise InvalidCredentials or Unavailable."""
        ...

    async def options(self) -> dict[str, list[Choice]]:
        """Return, per connect-form field, the values the platform offers (fetched live)."""
        ...

    async def create_ticket(self, packet: TicketPacket) -> TicketRef:
        """Create the ticket once per `packet.idempotency_key`, even when retried."""
        ...

    async def add_message(self, ticket: TicketRef, message: Message, contact: Contact) -> None:
        """Add a user's follow-up message to the ticket, as the customer (not as an agent)."""
        ...

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check an inbound webhook's signature (and timestamp); raise BadSignature."""
        ...

    async def parse_webhook(self, request: WebhookRequest) -> list[TicketEvent]:
        """Return the agent replies and solved/closed changes in a verified webhook."""
        ...

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the steps an admin follows on the platform to send us its webhooks."""
        ...


class Connector(ABC, Generic[FormT]):
    """What every connector is built from, so that each declares only what differs.

    The constructor is the one `Helpdesk` asks for: it keeps the connect form (as the
    connector's own `FormT`), the HTTP client, the secret handoff generated for its webhooks
    and the token store, then lets `_setup` derive the rest from the form.
    """

    platform: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    max_body_chars: ClassVar[int]
    credentials_model: ClassVar[type[BaseModel]]  # FormT itself: a ClassVar cannot name it

    def __init__(
        self,
        credentials: BaseModel,
        *,
        http: httpx.AsyncClient,
        webhook_secret: str,
        tokens: TokenStore | None = None,
    ) -> None:
        # own_form checks the instance against credentials_model, which is FormT.
        self._credentials = cast(FormT, common.own_form(credentials, self.credentials_model))
        self._http = http
        # Platforms that sign with their own secret, or one the admin typed, replace it.
        self._webhook_secret = webhook_secret
        self._tokens: TokenStore = tokens or MemoryTokens()
        self._setup(self._credentials)

    @abstractmethod
    def _setup(self, form: FormT) -> None:
        """Derive, once, what the calls need from the form: the API's URL, how to sign in."""
