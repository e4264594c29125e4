"""Faithful fakes of the outside services handoff talks to, served over real HTTP."""
