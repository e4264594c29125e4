"""The one contract every helpdesk connector implements."""

from __future__ import annotations

from typing import ClassVar, Protocol

from handoff.domain import Message, TicketPacket, TicketRef


class Helpdesk(Protocol):
    """A pure adapter over one platform's HTTP API; it never touches the store."""

    platform: ClassVar[str]
    title: ClassVar[str]
    max_body_chars: ClassVar[int]

    async def verify_credentials(self) -> None:
        """Make one cheap authenticated call; raise InvalidCredentials or Unavailable."""
        ...

    async def create_ticket(self, packet: TicketPacket) -> TicketRef:
        """Create the ticket once per packet.idempotency_key and return where it lives."""
        ...

    async def add_message(self, ticket: TicketRef, message: Message) -> None:
        """Add a user's follow-up message to the ticket, as the customer."""
        ...
