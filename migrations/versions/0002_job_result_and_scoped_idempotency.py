"""job result data and caller-scoped idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a column's type in place, so Alembic copies the table there
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('result', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
        batch.alter_column('idempotency_key', existing_type=sa.String(length=200), type_=sa.String(length=300),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('idempotency_key', existing_type=sa.String(length=300), type_=sa.String(length=200),
                           existing_nullable=True)
        batch.drop_column('request_hash')
        batch.drop_column('result')
