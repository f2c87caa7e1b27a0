"""CSV imports: the staged file of each member's import (crm_app.imports)

Revision ID: 0010_imports
Revises: 0009_invoices
Create Date: 2026-12-05 14:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_imports'
down_revision = '0009_invoices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('resource', sa.String(length=40), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_import_job_user_id_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_import_job_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job')),
    sa.UniqueConstraint('workspace_id', 'user_id', 'resource', name='uq_import_job_member_resource')
    )


def downgrade():
    op.drop_table('import_job')
