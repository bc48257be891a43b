"""Alembic entry point for the catalog schema.

``meshkit.catalog.migrate`` passes an open connection in ``config.attributes["connection"]`` so
migrations run inside the caller's transaction, on the caller's engine (and, in tests, in the
caller's PostgreSQL schema). Running ``alembic`` by hand with ``sqlalchemy.url`` set also works,
for operators who want to inspect or stamp a catalog.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from meshkit.catalog.models import Base


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch mode drops and recreates tables; with foreign keys enforced that would trip
        # over rows in child tables mid-migration. Deferring checks to COMMIT still verifies
        # the end result (``PRAGMA foreign_keys`` itself cannot change inside a transaction).
        connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass a connection in config.attributes or set sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
