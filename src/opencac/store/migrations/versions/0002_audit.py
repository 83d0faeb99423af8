"""0002_audit: coding-quality audits (audits, samples, findings, responses, determinations).

Revision ID: 0002_audit
Revises: 0001_core
Create Date: 2026-11-27 00:18:30.137579
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002_audit'
down_revision = '0001_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('base_rate', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('frame_hash', sa.String(length=64), nullable=True),
    sa.Column('frame_ids', sa.JSON(), nullable=False),
    sa.Column('sample_record', sa.JSON(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sampled_at', sa.DateTime(), nullable=True),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audits_status'), ['status'], unique=False)

    op.create_table('audit_samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('encounter_id', sa.Integer(), nullable=False),
    sa.Column('sample_order', sa.Integer(), nullable=False),
    sa.Column('stratum', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('risk', sa.Float(), nullable=True),
    sa.Column('final', sa.JSON(), nullable=False),
    sa.Column('audited', sa.JSON(), nullable=True),
    sa.Column('score', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('auditor_id', sa.Integer(), nullable=True),
    sa.Column('audited_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['audit_id'], ['audits.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['auditor_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('audit_id', 'encounter_id', name='uq_audit_samples_audit_encounter')
    )
    with op.batch_alter_table('audit_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_samples_audit_id'), ['audit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_samples_encounter_id'), ['encounter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_samples_status'), ['status'], unique=False)

    op.create_table('audit_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('final_code', sa.String(length=20), nullable=True),
    sa.Column('audited_code', sa.String(length=20), nullable=True),
    sa.Column('root_cause', sa.String(length=30), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('citation', sa.String(length=300), nullable=False),
    sa.Column('override', sa.Boolean(), nullable=False),
    sa.Column('financial_impact', sa.Float(), nullable=False),
    sa.Column('determination', sa.String(length=20), nullable=True),
    sa.Column('determination_note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['audits.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sample_id'], ['audit_samples.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_findings_audit_id'), ['audit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_findings_sample_id'), ['sample_id'], unique=False)

    op.create_table('audit_determinations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['audit_findings.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_determinations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_determinations_finding_id'), ['finding_id'], unique=False)

    op.create_table('audit_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['audit_findings.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_responses_finding_id'), ['finding_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('audit_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_responses_finding_id'))

    op.drop_table('audit_responses')
    with op.batch_alter_table('audit_determinations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_determinations_finding_id'))

    op.drop_table('audit_determinations')
    with op.batch_alter_table('audit_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_findings_sample_id'))
        batch_op.drop_index(batch_op.f('ix_audit_findings_audit_id'))

    op.drop_table('audit_findings')
    with op.batch_alter_table('audit_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_samples_status'))
        batch_op.drop_index(batch_op.f('ix_audit_samples_encounter_id'))
        batch_op.drop_index(batch_op.f('ix_audit_samples_audit_id'))

    op.drop_table('audit_samples')
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audits_status'))

    op.drop_table('audits')
