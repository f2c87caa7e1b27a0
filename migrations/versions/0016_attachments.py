"""Attachments: the rbac_attachment table

The same table as the plugin's ``rbac_0010`` revision (see
``crm_rbac_plugin.models.files``), in the demo's own history.

Revision ID: 0012_attachments
Revises: 0011_campaigns
Create Date: 2026-12-05 14:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_attachments'
down_revision = '0011_campaigns'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rbac_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('resource', sa.String(length=80), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('uploaded_by_membership_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_by_name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_rbac_attachment_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_attachment')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_rbac_attachment_storage_key'))
    )
    op.create_index('ix_rbac_attachment_record', 'rbac_attachment', ['resource', 'record_id'], unique=False)
    op.create_index('ix_rbac_attachment_workspace_id', 'rbac_attachment', ['workspace_id'], unique=False)


def downgrade():
    op.drop_index('ix_rbac_attachment_workspace_id', table_name='rbac_attachment')
    op.drop_index('ix_rbac_attachment_record', table_name='rbac_attachment')
    op.drop_table('rbac_attachment')
