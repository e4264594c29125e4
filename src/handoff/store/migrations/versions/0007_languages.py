"""Visitors answered in their language: the conversation remembers it, and an action keeps
the admin's texts per language.

Conversations from before this revision speak English, unpinned: their visitors' next clear
message in another language switches them."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("language", sa.String(length=8), nullable=False, server_default="en")
        )
        batch.add_column(
            sa.Column("language_pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("actions") as batch:
        batch.add_column(
            sa.Column("handoff_messages", sa.JSON(), nullable=False, server_default="{}")
        )
        batch.add_column(
            sa.Column("alternative_messages", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("alternative_messages")
        batch.drop_column("handoff_messages")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("language_pinned")
        batch.drop_column("language")
