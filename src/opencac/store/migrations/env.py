"""Alembic environment of the OpenCAC store (runs from ``opencac.store.db.upgrade``).

All model modules that exist are imported, so their tables are on ``Base.metadata``:
``opencac.store.models`` (0001_core), ``audit_models`` (0002_audit), ``learning_models`` (0003_learning).
"""

from __future__ import annotations

import importlib

from alembic import context
from sqlalchemy import engine_from_config, pool

from opencac.store.models import Base

for _name in ("opencac.store.audit_models", "opencac.store.learning_models"):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise

target_metadata = Base.metadata
config = context.config


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section) or {},
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
