"""Notifications: the outbox of in-app entries and mails, and each member's channels

The same tables as the plugin's ``rbac_0003_notify`` revision (see
``crm_rbac_plugin.models.notify``), in the demo's own history.

Revision ID: 5b0e6c1f2a93
Revises: 42a4cc47ac4f
Create Date: 2026-12-05 11:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b0e6c1f2a93'
down_revision = '42a4cc47ac4f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rbac_notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('event', sa.String(length=60), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('link', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.Column('mail_state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['membership_id'], ['rbac_membership.id'], name=op.f('fk_rbac_notification_membership_id_rbac_membership'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_rbac_notification_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_notification')),
    sa.UniqueConstraint('membership_id', 'dedupe_key', name=op.f('uq_rbac_notification_membership_id'))
    )
    with op.batch_alter_table('rbac_notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rbac_notification_mail'), ['mail_state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rbac_notification_unread'), ['membership_id', 'read_at'], unique=False)

    op.create_table('rbac_notification_preference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['rbac_membership.id'], name=op.f('fk_rbac_notification_preference_membership_id_rbac_membership'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_notification_preference')),
    sa.UniqueConstraint('membership_id', 'category', name=op.f('uq_rbac_notification_preference_membership_id'))
    )


def downgrade():
    op.drop_table('rbac_notification_preference')
    with op.batch_alter_table('rbac_notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rbac_notification_unread'))
        batch_op.drop_index(batch_op.f('ix_rbac_notification_mail'))

    op.drop_table('rbac_notification')
