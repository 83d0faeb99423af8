"""0004_seams: final_code_sets.coded_by (how a code set was finalised) and revoked_sessions.

Revision ID: 0004_seams
Revises: 0003_learning
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_seams"
down_revision = "0003_learning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("final_code_sets") as b:
        b.add_column(sa.Column("coded_by", sa.String(length=30), nullable=True))
        b.create_index(b.f("ix_final_code_sets_coded_by"), ["coded_by"], unique=False)
    op.create_table(
        "revoked_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("revoked_sessions") as b:
        b.create_index(b.f("ix_revoked_sessions_nonce"), ["nonce"], unique=True)
        b.create_index(b.f("ix_revoked_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("revoked_sessions") as b:
        b.drop_index(b.f("ix_revoked_sessions_user_id"))
        b.drop_index(b.f("ix_revoked_sessions_nonce"))
    op.drop_table("revoked_sessions")
    with op.batch_alter_table("final_code_sets") as b:
        b.drop_index(b.f("ix_final_code_sets_coded_by"))
        b.drop_column("coded_by")
