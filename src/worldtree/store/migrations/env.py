"""Alembic environment for the run store; driven by ``worldtree.store.schema``, no alembic.ini.

``schema.migrate`` hands in an open connection (``config.attributes["connection"]``) already
inside the transaction that holds the migration lock. For a new revision, from a checkout::

    python -c "from worldtree.store.schema import alembic_config; from alembic import command; \\
        command.revision(alembic_config('sqlite:///dev.db'), message='...', autogenerate=True)"
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from worldtree.store.tables import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                          literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    if connection is None:  # e.g. ``command.revision(..., autogenerate=True)`` from a checkout
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
            context.run_migrations()
        engine.dispose()
        return
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
