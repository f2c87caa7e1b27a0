"""Quotas: record caps per role

The same table as the plugin's ``rbac_0008`` revision (see
``crm_rbac_plugin.models.quotas``), in the demo's own history.

Revision ID: 7d2b9e41c0a8
Revises: 5d21c0d10007
Create Date: 2026-12-05 14:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d2b9e41c0a8'
down_revision = '5d21c0d10007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rbac_role_quota',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('resource', sa.String(length=60), nullable=False),
    sa.Column('max_records', sa.Integer(), nullable=False),
    sa.CheckConstraint('max_records >= 0', name=op.f('ck_rbac_role_quota_max_records')),
    sa.ForeignKeyConstraint(['role_id'], ['rbac_role.id'], name=op.f('fk_rbac_role_quota_role_id_rbac_role'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_role_quota')),
    sa.UniqueConstraint('role_id', 'resource', name=op.f('uq_rbac_role_quota_role_id'))
    )


def downgrade():
    op.drop_table('rbac_role_quota')
