"""Engines, sessions and migrations.

``database_url()`` picks the URL: an explicit one, else ``$OPENCAC_DATABASE_URL``, else a SQLite
file in the platformdirs user data dir. ``make_engine()`` configures SQLite for a multi-threaded
server (WAL, busy timeout, ``BEGIN IMMEDIATE`` for writing transactions so that concurrent
writers queue instead of failing). ``upgrade()`` runs the Alembic migrations to ``head``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from opencac.errors import DatabaseError, OpenCACError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Execution option: set on an engine (``engine.execution_options(opencac_readonly=True)``) to
#: open plain deferred SQLite transactions for read-only work.
READONLY_OPTION = "opencac_readonly"


def default_data_dir() -> Path:
    """The per-user data directory (created)."""
    import platformdirs

    d = Path(os.environ.get("OPENCAC_DATA_DIR") or platformdirs.user_data_dir("opencac", "opencac"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def database_url(url: str | None = None) -> str:
    """The database URL: ``url``, else ``$OPENCAC_DATABASE_URL``, else SQLite in the data dir."""
    if url:
        return url
    env = os.environ.get("OPENCAC_DATABASE_URL")
    if env:
        return env
    return f"sqlite:///{default_data_dir() / 'opencac.db'}"


def is_sqlite(url: str) -> bool:
    """True for a SQLite URL."""
    return url.startswith("sqlite")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (see :func:`database_url`).

    For SQLite: WAL journal, 30 s busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` unless
    the connection carries the ``opencac_readonly`` execution option.
    """
    url = database_url(url)
    if is_sqlite(url):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 100)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            readonly = conn.get_execution_options().get(READONLY_OPTION, False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 40)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` for ``url`` pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations on ``engine`` up to ``revision`` (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OpenCACError:
        raise
    except Exception as exc:  # noqa: BLE001 - one clear line for the user
        raise DatabaseError(f"could not migrate the database at {engine.url!r}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transactional scope: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
