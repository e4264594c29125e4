"""The channels as the service and the pages see them, all read from the one registry,
`handoff.channels.CHANNELS`: their words, which ones a public caller may open, and the
adapter that sends on each channel with an outside API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr

from handoff.channels import CHANNELS, SENDERS, SendingChannel
from handoff.domain import Channel
from handoff.service.runtime import Handoff
from handoff.store.models import ChannelConnection

FormT = TypeVar("FormT", bound=BaseModel)


def titles() -> dict[str, str]:
    """What the pages call each channel, in the order they list them."""
    return {channel.value: adapter.title for channel, adapter in CHANNELS.items()}


def places() -> dict[Channel, str]:
    """Where a person can be reached on each channel, in words, in the order to name them."""
    return {channel: adapter.place for channel, adapter in CHANNELS.items()}


def widget_modes() -> dict[str, str]:
    """The channel each mode of the chat widget opens when its page names none, by mode."""
    return {
        adapter.widget_mode: channel.value
        for channel, adapter in CHANNELS.items()
        if adapter.widget_mode is not None
    }


def open_to_callers() -> list[str]:
    """The channels anyone may start a conversation on: those read through the live events.

    A channel with an outside API is opened only by its connection's verified webhook, so
    nobody can start one for a phone number that is not theirs.
    """
    return [channel.value for channel, adapter in CHANNELS.items() if adapter.live]


def sender_of(channel: str) -> type[SendingChannel] | None:
    """The adapter that sends our messages on `channel`; None for a live channel."""
    return SENDERS.get(Channel(channel))


def senders() -> list[type[SendingChannel]]:
    """The adapters of every channel that sends through an outside API."""
    return list(SENDERS.values())


def connect_forms() -> list[dict[str, Any]]:
    """Every channel with an outside API, with its connect form as JSON schema and the words
    of its Settings tab, in the order the pages list them. Its connection lives at
    `/api/v1/agents/{agent_id}/channels/{channel}`."""
    return [
        {
            "channel": sender.channel.value,
            "title": sender.title,
            **asdict(sender.connect_words),
            "form": sender.credentials_model.model_json_schema(),
        }
        for sender in SENDERS.values()
    ]


def shown_values(form: BaseModel) -> dict[str, Any]:
    """The connect form's values but its secrets, to fill the form again with."""
    return {
        name: value
        for name, value in form.model_dump(mode="json").items()
        if not isinstance(getattr(form, name), SecretStr)
    }


def connection_form(hf: Handoff, connection: ChannelConnection, model: type[FormT]) -> FormT:
    """The connect form a channel connection was saved with, unsealed."""
    return model.model_validate(hf.vault.open(connection.credentials)["form"])
