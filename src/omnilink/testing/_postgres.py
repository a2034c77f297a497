"""A throwaway PostgreSQL schema for tests that need a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_TEST_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class PostgresUnavailable(Exception):
    """No PostgreSQL server answered at the test DSN."""


def postgres_test_dsn() -> str:
    """The server tests use: ``OMNILINK_TEST_POSTGRES_DSN`` or the local default."""
    return os.environ.get("OMNILINK_TEST_POSTGRES_DSN", DEFAULT_TEST_DSN)


@contextmanager
def postgres_schema(dsn: str | None = None, *, prefix: str = "omnilink_test") -> Iterator[str]:
    """Create a fresh schema, yield a DSN whose ``search_path`` is that schema, then drop it.

    Raises PostgresUnavailable when no server answers within 5 seconds.
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    base = dsn or postgres_test_dsn()
    try:
        conn = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise PostgresUnavailable(f"PostgreSQL not reachable at {base}: {exc}") from exc
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield make_conninfo(base, options=f"-c search_path={schema}")
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
