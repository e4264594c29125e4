"""The inbox lists tickets page by page and searches message text.

An index serves the pages (a workspace's tickets by status and creation time). Message text
gets a full-text index: on SQLite an FTS5 table over `messages` (external content, so the text
is stored once), filled from the messages already there and kept in step by triggers; on
PostgreSQL a GIN index over `to_tsvector('simple', text)`, whose 'simple' configuration splits
words without any one language's stemming, so every language is found alike."""

from alembic import op

revision = "0008"
down_revision = "0007"

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE messages_search USING fts5("
    "text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO messages_search(messages_search) VALUES ('rebuild')",
    "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_search(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_search(messages_search, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER messages_search_update AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_search(messages_search, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO messages_search(rowid, text) VALUES (new.id, new.text); END",
]
POSTGRES_SEARCH = [
    "CREATE INDEX messages_search_gin ON messages USING gin (to_tsvector('simple', text))",
]


def upgrade() -> None:
    op.create_index("ix_tickets_listing", "tickets", ["workspace_id", "status", "created_at", "id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_SEARCH if sqlite else POSTGRES_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER messages_search_{trigger}")
        op.execute("DROP TABLE messages_search")
    else:
        op.execute("DROP INDEX messages_search_gin")
    op.drop_index("ix_tickets_listing", "tickets")
