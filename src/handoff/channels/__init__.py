"""Channels the agent talks on, and how each one delivers messages to the user."""

from handoff.domain import Channel

# Channels whose users read replies on the live event stream (widget, help page) or by
# fetching the conversation (API clients).
LIVE_CHANNELS: frozenset[Channel] = frozenset({Channel.WIDGET, Channel.HELP_PAGE, Channel.API})

__all__ = ["LIVE_CHANNELS"]
