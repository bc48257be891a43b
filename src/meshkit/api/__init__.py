"""The HTTP API (`meshkit serve`): FastAPI over the same Workspace as the CLI."""

from meshkit.api.app import create_app

__all__ = ["create_app"]
