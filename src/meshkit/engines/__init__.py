"""Compute engines behind one small interface (DuckDB by default)."""
