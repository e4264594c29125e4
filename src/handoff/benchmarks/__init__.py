"""Measuring the service end to end against fake third parties on 127.0.0.1."""
