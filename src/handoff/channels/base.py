"""The one contract every channel implements on our side of a conversation, and what a
delivery is made of.

A channel either is live, or sends through an outside API. On a live channel (the widget, the
help page, API clients) the user reads the conversation's live events, which posting a message
publishes for every conversation: that event is the delivery, and nothing else goes out. A
channel with an outside API (WhatsApp) has a connection per agent, whose credentials its
`credentials_model` reads (Settings renders its connect tab from that form and its
`connect_words`), and `deliver` sends one message of ours with them; the service runs
it in an outbox job, with no transaction open, and maps `channels.errors` onto the job's
retries. Like a helpdesk connector, an adapter never touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

import httpx
from pydantic import BaseModel

from handoff.domain import Channel


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of ours, with what a delivery needs from its conversation."""

    text: str
    to: str | None  # the user's id on the channel: the conversation's contact external id
    last_heard: datetime | None  # when the user last wrote, for channels that answer only a while


@dataclass(frozen=True, slots=True)
class Delivered:
    """How a message went out; `note` tells the team on the ticket when it differed."""

    note: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectWords:
    """What Settings says on the tab that connects a channel with an outside API."""

    tab: str  # under the channel's name in the Settings menu: "Answer on your business number"
    lead: str  # what connecting it does, atop the tab
    connect: str  # the connect card's heading: "Connect a business number"
    checked: str  # how the form is checked and kept, under that heading
    finish: str  # where the setup ends once connected: "Finish the setup at Meta"


class ChannelOutbound(Protocol):
    """Where the user talks to the agent, and how our side reaches them there."""

    channel: ClassVar[Channel]  # the registry key
    title: ClassVar[str]  # what the pages call it, e.g. "Chat widget"
    place: ClassVar[str]  # where a person can be reached, in a sentence: "our help page"
    live: ClassVar[bool]  # the user reads the live events; anyone may open a conversation here
    # The mode of the chat widget (`widget.js`: "bubble", "page") that opens this channel when
    # its page names none; None for a channel the widget does not open.
    widget_mode: ClassVar[str | None]


class SendingChannel(ChannelOutbound, Protocol):
    """A channel our messages reach through an outside API, never through the live events.

    Only the verified webhook of the agent's connection opens a conversation on it, so a reply
    never goes to an address a public caller typed in.
    """

    credentials_model: ClassVar[type[BaseModel]]  # the connect form, sealed with the connection
    connect_words: ClassVar[ConnectWords]

    def __init__(self, credentials: BaseModel, *, http: httpx.AsyncClient) -> None: ...

    async def deliver(self, outgoing: Outgoing) -> Delivered:
        """Send the message to `outgoing.to`; raise a `channels.errors` error when it fails.

        The outbox may run it again after a lost answer: a channel without idempotency keys
        may then deliver twice, never zero times.
        """
        ...
