"""Run the catalog's Alembic migrations from inside the installed package.

There is no ``alembic.ini`` at runtime: the config is built here and points at the
``migrations`` directory next to this file, so an installed wheel can create or upgrade a
catalog anywhere without the source tree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from meshkit.errors import CatalogError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant will do; it only has to be the same for every meshkit process.
_PG_MIGRATION_LOCK = 0x6D657368  # "mesh"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the catalog, optionally bound to an open ``connection``."""
    config = Config()
    # Config values go through configparser interpolation, so a literal '%' must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> set[str]:
    """The revisions a fully migrated catalog is at."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> set[str]:
    """The revisions the database behind ``connection`` is at (empty for a new database)."""
    return set(MigrationContext.configure(connection).get_current_heads())


def upgrade_to_head(connection: Connection) -> None:
    """Bring the catalog to the newest schema inside the caller's transaction.

    Cheap when already at head: one query against ``alembic_version``, no migration scripts
    run. Concurrent openers are serialised (SQLite by the caller's ``BEGIN IMMEDIATE``,
    PostgreSQL by a transaction-scoped advisory lock) so two builds starting against a fresh
    catalog do not both try to create the tables.
    """
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    heads = set(script.get_heads())
    if current_revisions(connection) == heads:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    current = current_revisions(connection)
    if current == heads:
        return
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = sorted(current - known)
    if unknown:
        raise CatalogError(
            f"the catalog schema is at revision {', '.join(unknown)}, which this meshkit "
            "does not know",
            hint="it was created by a newer meshkit; upgrade meshkit to use this catalog",
        )
    command.upgrade(config, "head")
