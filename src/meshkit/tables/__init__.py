"""Published tables (Delta Lake)."""
