"""0005_edit_fixes: an edit's proposed fix, its status and the coder's resolution.

Adds to ``edits``: ``fix`` (JSON), ``fix_status`` (applied / proposed / unchanged), ``resolution``
(applied / dismissed), ``resolved_by_id``, ``resolved_at`` and ``resolution_reason``. All nullable:
rows stored before this revision have no fix.

Revision ID: 0005_edit_fixes
Revises: 0004_seams
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_edit_fixes"
down_revision = "0004_seams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("edits") as b:
        b.add_column(sa.Column("fix", sa.JSON(), nullable=True))
        b.add_column(sa.Column("fix_status", sa.String(length=20), nullable=True))
        b.add_column(sa.Column("resolution", sa.String(length=20), nullable=True))
        b.add_column(sa.Column("resolved_by_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("resolved_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("resolution_reason", sa.Text(), nullable=True))
        b.create_foreign_key("fk_edits_resolved_by_id_users", "users", ["resolved_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("edits") as b:
        b.drop_constraint("fk_edits_resolved_by_id_users", type_="foreignkey")
        b.drop_column("resolution_reason")
        b.drop_column("resolved_at")
        b.drop_column("resolved_by_id")
        b.drop_column("resolution")
        b.drop_column("fix_status")
        b.drop_column("fix")
