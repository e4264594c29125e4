"""Channels the agent talks on, one adapter per channel behind the `ChannelOutbound` protocol.

`CHANNELS` is the one list of them: the service looks a channel up here to know its words,
whether a public caller may open it, and how our side of a conversation reaches the user
(the live events, or the adapter's `deliver` through an outside API). A new channel is a
member of `domain.Channel`, its module here, and its line in `ADAPTERS`.
"""

from typing import cast

from handoff.channels.base import (
    ChannelOutbound,
    ConnectWords,
    Delivered,
    Outgoing,
    SendingChannel,
)
from handoff.channels.live import ApiChannel, HelpPageChannel, WidgetChannel
from handoff.channels.whatsapp import WhatsAppChannel
from handoff.domain import Channel

# In the order the pages list them.
ADAPTERS: tuple[type[ChannelOutbound], ...] = (
    WidgetChannel,
    HelpPageChannel,
    WhatsAppChannel,
    ApiChannel,
)

CHANNELS: dict[Channel, type[ChannelOutbound]] = {a.channel: a for a in ADAPTERS}
# The channels that send through an outside API; `live` says which they are.
SENDERS: dict[Channel, type[SendingChannel]] = {
    a.channel: cast(type[SendingChannel], a) for a in ADAPTERS if not a.live
}

__all__ = [
    "ADAPTERS",
    "CHANNELS",
    "SENDERS",
    "ChannelOutbound",
    "ConnectWords",
    "Delivered",
    "Outgoing",
    "SendingChannel",
]
