"""Access reviews: review schedules, certification runs and their items

The same tables as the plugin's ``rbac_0006`` revision (see
``crm_rbac_plugin.models.certification``), in the demo's own history.

Revision ID: 5c7e1a90b3d2
Revises: 5a1e2f0c0005
Create Date: 2026-12-05 11:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c7e1a90b3d2'
down_revision = '5a1e2f0c0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rbac_review_schedule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('interval_days', sa.Integer(), nullable=False),
    sa.Column('require_reason', sa.Boolean(), nullable=False),
    sa.Column('last_reviewed_at', sa.DateTime(), nullable=True),
    sa.Column('reminded_due_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by_membership_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_rbac_review_schedule_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_review_schedule')),
    sa.UniqueConstraint('workspace_id', name=op.f('uq_rbac_review_schedule_workspace_id'))
    )
    op.create_table('rbac_certification_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('resource', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('started_by_membership_id', sa.Integer(), nullable=True),
    sa.Column('started_by_name', sa.String(length=255), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('completed_by_membership_id', sa.Integer(), nullable=True),
    sa.Column('completed_by_name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_rbac_certification_run_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_certification_run'))
    )
    op.create_index('ix_rbac_certification_run_workspace_id', 'rbac_certification_run', ['workspace_id'], unique=False)
    op.create_table('rbac_certification_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('member_name', sa.String(length=255), nullable=False),
    sa.Column('why', sa.String(length=80), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by_membership_id', sa.Integer(), nullable=True),
    sa.Column('decided_by_name', sa.String(length=255), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['rbac_certification_run.id'], name=op.f('fk_rbac_certification_item_run_id_rbac_certification_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_certification_item'))
    )
    op.create_index('ix_rbac_certification_item_run_id', 'rbac_certification_item', ['run_id'], unique=False)


def downgrade():
    op.drop_index('ix_rbac_certification_item_run_id', table_name='rbac_certification_item')
    op.drop_table('rbac_certification_item')
    op.drop_index('ix_rbac_certification_run_workspace_id', table_name='rbac_certification_run')
    op.drop_table('rbac_certification_run')
    op.drop_table('rbac_review_schedule')
