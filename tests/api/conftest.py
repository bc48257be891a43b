"""Fixtures of the API server tests: see served.py."""

from api.served import start_server

__all__ = ["start_server"]
