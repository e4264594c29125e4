"""The handoff state of a conversation: who owns it, the pending request for a person, the
stretch count, and each escalation's status, first reply and handback reason.

`stages.stage_of` is the one reading of that state; `transitions` holds the only code that
writes it (`tests/test_layers.py:test_only_the_lifecycle_writes_handoff_state`). This
`__init__` imports nothing, so `service/views.py` can read the stage without importing the
transitions, which post messages through `service/posting.py`.
"""
