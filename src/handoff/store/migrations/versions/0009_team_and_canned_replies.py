"""A team run from Settings: members can be disabled, and a workspace keeps canned replies."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_canned_replies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
        sa.UniqueConstraint("workspace_id", "title", name=op.f("uq_canned_replies_workspace_id")),
    )
    op.create_index(
        op.f("ix_canned_replies_workspace_id"), "canned_replies", ["workspace_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_canned_replies_workspace_id"), table_name="canned_replies")
    op.drop_table("canned_replies")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("disabled")
