"""Campaigns: campaigns, their member leads, sends and unsubscribed addresses

The tables of ``crm_app.campaigns.models``. Both foreign keys of
``campaign_lead`` cascade, so deleting a campaign or a lead removes its
links, including those the deleting member cannot see.

Revision ID: 0011_campaigns
Revises: 0010_imports
Create Date: 2026-12-05 14:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_campaigns'
down_revision = '0010_imports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaign',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_campaign_owner_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_campaign_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign'))
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_ws_id', ['workspace_id', 'id'], unique=False)
        batch_op.create_index('ix_campaign_ws_owner', ['workspace_id', 'owner_id', 'id'], unique=False)

    op.create_table('campaign_lead',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_lead_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_campaign_lead_lead_id_lead'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'lead_id', name=op.f('pk_campaign_lead'))
    )
    with op.batch_alter_table('campaign_lead', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_lead_lead_id'), ['lead_id'], unique=False)

    op.create_table('campaign_send',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('skipped_hidden', sa.Integer(), nullable=False),
    sa.Column('skipped_unsubscribed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_send_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_id'], ['user.id'], name=op.f('fk_campaign_send_sender_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_campaign_send_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_send'))
    )
    with op.batch_alter_table('campaign_send', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_send_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_send_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_send_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('campaign_unsubscribe',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_campaign_unsubscribe_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_unsubscribe')),
    sa.UniqueConstraint('workspace_id', 'email', name='uq_campaign_unsubscribe_ws_email')
    )


def downgrade():
    op.drop_table('campaign_unsubscribe')
    with op.batch_alter_table('campaign_send', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_send_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_campaign_send_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_campaign_send_at'))
    op.drop_table('campaign_send')
    with op.batch_alter_table('campaign_lead', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_lead_lead_id'))
    op.drop_table('campaign_lead')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_ws_owner')
        batch_op.drop_index('ix_campaign_ws_id')
    op.drop_table('campaign')
