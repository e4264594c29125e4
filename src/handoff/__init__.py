"""handoff: an Escalate to Human action for AI support agents."""

__version__ = "0.1.0"
