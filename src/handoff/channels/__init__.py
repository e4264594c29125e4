"""Channels the agent talks on: widget, help page and API clients read replies from the
conversation's live event stream or the conversation itself; further channels plug in here."""
