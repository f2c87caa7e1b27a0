"""User session token: the alternative id Flask-Login keeps in sessions

Adds ``user.session_token`` (see ``crm_app.models.User``) and gives every
existing user a random one. Sessions and remember-me cookies issued before
this migration held the primary key and name nobody afterwards: everyone
signs in again once.

Revision ID: d6a868d88680
Revises: d2ded950a9d1
Create Date: 2026-11-25 16:52:03.208990

"""
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd6a868d88680'
down_revision = 'd2ded950a9d1'
branch_labels = None
depends_on = None


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    # SQLite adds a NOT NULL column only with a default, and altering the column
    # afterwards would rebuild "user" in batch mode: its DROP TABLE runs, with foreign
    # keys on, the ON DELETE rules of every table pointing at it (memberships deleted,
    # owners set to NULL). So SQLite keeps an unused '' server default instead.
    op.add_column('user', sa.Column('session_token', sa.String(length=64),
                                    nullable=not sqlite,
                                    server_default='' if sqlite else None))
    user = sa.table('user', sa.column('id', sa.Integer()),
                    sa.column('session_token', sa.String(length=64)))
    bind = op.get_bind()
    for (user_id,) in bind.execute(sa.select(user.c.id)).all():
        bind.execute(sa.update(user).where(user.c.id == user_id)
                     .values(session_token=secrets.token_urlsafe(32)))
    if not sqlite:
        op.alter_column('user', 'session_token', existing_type=sa.String(length=64),
                        nullable=False)
    op.create_index(op.f('ix_user_session_token'), 'user', ['session_token'], unique=True)


def downgrade():
    op.drop_index(op.f('ix_user_session_token'), table_name='user')
    op.drop_column('user', 'session_token')
