"""When to escalate: signals, the local encoder, the policy that combines them, the summary."""

from handoff.decide.encoder import Encoder, get_encoder
from handoff.decide.policy import THRESHOLD_NAMES, Decider, LocalDecider, Thresholds
from handoff.decide.summary import subject_for, summarize

__all__ = [
    "THRESHOLD_NAMES",
    "Decider",
    "Encoder",
    "LocalDecider",
    "Thresholds",
    "get_encoder",
    "subject_for",
    "summarize",
]
