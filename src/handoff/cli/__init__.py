"""The `handoff` command line."""
