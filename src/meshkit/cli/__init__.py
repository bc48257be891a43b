"""The command-line frontend (Typer + Rich)."""
