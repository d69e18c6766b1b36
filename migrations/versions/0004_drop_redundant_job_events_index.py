"""drop ix_job_events_job_seq: the (job_id, seq) unique constraint already indexes those columns

Every job event (state changes, progress, logs, metrics) wrote both indexes; lookups by job and sequence use the
constraint's index alike.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.drop_index('ix_job_events_job_seq')


def downgrade() -> None:
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.create_index('ix_job_events_job_seq', ['job_id', 'seq'], unique=False)
