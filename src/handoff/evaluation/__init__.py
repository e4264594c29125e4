"""Measure the decider: how often it is right (`metrics`) and how fast it is (`benchmark`).

Only the `handoff eval` and `handoff bench decide` commands use this; the decider never does.
"""
