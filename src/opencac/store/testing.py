"""Throw-away databases for tests and benchmarks.

``temp_database("sqlite", tmp_dir)`` yields a SQLite file URL; ``temp_database("postgresql")``
creates a fresh schema in ``$OPENCAC_TEST_POSTGRES_URL`` (default the local test server),
yields a URL whose ``search_path`` is that schema, and drops the schema afterwards.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The PostgreSQL server used by tests and benchmarks."""
    return os.environ.get("OPENCAC_TEST_POSTGRES_URL", DEFAULT_PG)


def postgres_unreachable_reason() -> str | None:
    """None when the test PostgreSQL answers, else why not (one line)."""
    from sqlalchemy import create_engine, text

    try:
        eng = create_engine(postgres_url(), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {postgres_url()} unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


@contextmanager
def temp_database(kind: str, directory: Path | None = None) -> Iterator[str]:
    """Yield the URL of an empty database of ``kind`` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(dir=directory) as d:
            yield f"sqlite:///{Path(d) / 'opencac-test.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}: expected sqlite or postgresql")
    from sqlalchemy import create_engine, text

    schema = "oc_test_" + secrets.token_hex(6)
    base = postgres_url()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
