"""Persistence: tables, repositories and migrations. SQLite by default, PostgreSQL at scale."""
