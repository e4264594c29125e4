"""Use cases that tie the parts together, each inside the caller's unit of work."""
