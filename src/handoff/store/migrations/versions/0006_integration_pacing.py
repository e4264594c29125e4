"""Per-integration pacing: the job's integration, the admin's limit, the shared budget.

Jobs from before this revision have no integration: they run unpaced, as they would have."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("outbox_jobs") as batch:
        batch.add_column(sa.Column("integration_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("rate_limit", sa.JSON(), nullable=True))
    op.create_table(
        "integration_budgets",
        sa.Column("integration_id", sa.String(length=32), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_integration_budgets_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_integration_budgets")),
    )


def downgrade() -> None:
    op.drop_table("integration_budgets")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("rate_limit")
    with op.batch_alter_table("outbox_jobs") as batch:
        batch.drop_column("integration_id")
