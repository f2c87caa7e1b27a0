"""Accounting: invoices linked to clients and deals

The ``invoice`` table of ``crm_app.accounting.models.Invoice``.

Revision ID: 0009_invoices
Revises: 5d2a7c11e0b9
Create Date: 2026-12-05 14:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_invoices'
down_revision = '5d2a7c11e0b9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invoice',
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('deal_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_invoice_client_id_client'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_invoice_deal_id_deal'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_invoice_owner_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['rbac_workspace.id'], name=op.f('fk_invoice_workspace_id_rbac_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice'))
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_deal_id'), ['deal_id'], unique=False)
        batch_op.create_index('ix_invoice_ws_id', ['workspace_id', 'id'], unique=False)
        batch_op.create_index('ix_invoice_ws_owner', ['workspace_id', 'owner_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_ws_owner')
        batch_op.drop_index('ix_invoice_ws_id')
        batch_op.drop_index(batch_op.f('ix_invoice_deal_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_client_id'))

    op.drop_table('invoice')
