"""A message's icon, content type (markdown), action buttons and encoding (UnifiedPush).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("icon", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("content_type", sa.String(length=32), nullable=True))
    op.add_column("messages", sa.Column("actions", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("encoding", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("encoding")
        batch.drop_column("actions")
        batch.drop_column("content_type")
        batch.drop_column("icon")
