"""The live channels: the user reads the conversation's live events (SSE), which posting a
message publishes, so that event is the whole delivery. They differ only in their words."""

from __future__ import annotations

from typing import ClassVar

from handoff.domain import N_, Channel


class LiveChannel:
    """A channel whose user reads our side from the conversation's live event stream."""

    channel: ClassVar[Channel]
    title: ClassVar[str]
    place: ClassVar[str]
    live: ClassVar[bool] = True
    widget_mode: ClassVar[str | None] = None


class WidgetChannel(LiveChannel):
    channel = Channel.WIDGET
    title = "Chat widget"
    place = N_("the chat on our website")
    widget_mode: ClassVar[str | None] = "bubble"


class HelpPageChannel(LiveChannel):
    channel = Channel.HELP_PAGE
    title = "Help page"
    place = N_("our help page")
    widget_mode: ClassVar[str | None] = "page"


class ApiChannel(LiveChannel):
    channel = Channel.API
    title = "API"
    place = N_("our app")
