"""workers table (the fleet view) and the device a job ran on

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('device', sa.String(length=32), nullable=False),
    sa.Column('dtype', sa.String(length=16), nullable=True),
    sa.Column('device_name', sa.String(length=200), nullable=True),
    sa.Column('memory_bytes', sa.BigInteger(), nullable=True),
    sa.Column('versions', sa.JSON(), nullable=False),
    sa.Column('heartbeat_seconds', sa.Float(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('current_job_id', sa.String(length=32), nullable=True),
    sa.Column('jobs_done', sa.Integer(), nullable=False),
    sa.Column('jobs_failed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('device', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('device')
    op.drop_table('workers')
