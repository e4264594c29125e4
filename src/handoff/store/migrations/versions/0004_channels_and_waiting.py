"""WhatsApp connections, channel rules, business hours, waiting and handback timers,
inbox assignment, widget theming, rotating OAuth tokens per integration, event pruning, and
outbox jobs that take the worker's retry budget."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("assignment", sa.String(length=16), nullable=False, server_default="manual")
        )
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("avatar_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("away", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("max_open_tickets", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_assigned_at", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("widget", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("tokens", sa.Text(), nullable=True))
        batch.add_column(sa.Column("token_lease_until", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("alternative_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("business_hours", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("wait_timeout_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("inactivity_timeout_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.create_index(
            "ix_conversations_contact", ["agent_id", "channel", "contact_external_id"], unique=False
        )
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("handback_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("first_reply_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("wait_notified_at", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.create_index("ix_events_created", ["created_at"], unique=False)
    with op.batch_alter_table("outbox_jobs") as batch:
        batch.alter_column("max_attempts", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "channel_connections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_channel_connections_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_connections")),
        sa.UniqueConstraint("agent_id", "channel", name=op.f("uq_channel_connections_agent_id")),
    )


def downgrade() -> None:
    op.drop_table("channel_connections")
    op.execute("UPDATE outbox_jobs SET max_attempts = 8 WHERE max_attempts IS NULL")
    with op.batch_alter_table("outbox_jobs") as batch:
        batch.alter_column("max_attempts", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_created")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("wait_notified_at")
        batch.drop_column("first_reply_at")
        batch.drop_column("handback_reason")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_contact")
    with op.batch_alter_table("actions") as batch:
        for column in (
            "inactivity_timeout_seconds",
            "wait_timeout_seconds",
            "business_hours",
            "alternative_message",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("token_lease_until")
        batch.drop_column("tokens")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("widget")
    with op.batch_alter_table("members") as batch:
        for column in ("last_assigned_at", "max_open_tickets", "away", "avatar_url"):
            batch.drop_column(column)
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("assignment")
