"""Alembic environment of the catalog; run through ``meshkit.catalog.migrate``, not the CLI."""
