"""External helpdesks: agent names on relayed replies, applied webhook events, ticket lookup."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("author_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("escalations") as batch:
        batch.create_index("ix_escalations_ticket", ["platform", "ticket_id"], unique=False)
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("integration_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_inbound_events_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_events")),
        sa.UniqueConstraint(
            "integration_id", "event_id", name=op.f("uq_inbound_events_integration_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("inbound_events")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index("ix_escalations_ticket")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("author_name")
