"""Conversations remember the channel connection whose verified webhook opened them.

Inbound WhatsApp messages are routed only to such conversations, and only they send to a
phone number. Conversations from before this revision have none: a WhatsApp user's next
message starts a new conversation rather than joining one the public API may have opened."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            "fk_conversations_connection_id_channel_connections",
            "channel_connections",
            ["connection_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_conversations_connection", ["connection_id", "contact_external_id"])


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_connection")
        batch.drop_constraint(
            "fk_conversations_connection_id_channel_connections", type_="foreignkey"
        )
        batch.drop_column("connection_id")
