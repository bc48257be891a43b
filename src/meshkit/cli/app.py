"""The `meshkit` command: the Typer app, its commands (from `meshkit.cli.commands`, one
module per area) registered in the order `meshkit --help` lists them, and `main()`, which
turns every error into a message and an exit code.

Exit codes (also in docs/cli.md):
  0 success · 1 error · 2 invalid specs or usage · 3 input/build error · 4 contract or quality
  gate failed (nothing published) · 5 conflict with a concurrent build · 6 catalog unavailable ·
  7 a required policy fails · 8 not authenticated · 9 access denied or query refused ·
  70 internal error (a bug: please report it) · 130 interrupted
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Any

import typer
import typer.core

from meshkit import __version__
from meshkit.cli import render
from meshkit.cli.commands import (
    access,
    audit,
    build,
    policy,
    products,
    retention,
    scaffold,
    serve,
    tokens,
)
from meshkit.errors import MeshkitError

app = typer.Typer(
    name="meshkit",
    help="Self-serve data mesh: declare data products as code, build them behind their contracts, "
    "publish them as Delta tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Typer prints a type column for every option, so flags read `--json <bool>`, which suggests
# `--json true` (refused). A flag takes no value: show none.
_display_type = typer.core.TyperOption.display_type_rich


def _flag_shows_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _display_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]


def _print_version(value: bool) -> None:
    if value:
        render.out.print(f"meshkit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Self-serve data mesh: declare data products as code, build them behind their contracts,
    publish them as Delta tables, and serve them with access control."""


EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

app.command()(scaffold.init)
app.command()(build.validate)
app.command()(build.build)
app.command("products")(products.list_products)
app.command()(products.show)
app.command()(products.query)
app.command()(retention.vacuum)
app.command()(scaffold.schema)
app.command()(scaffold.demo)
app.command()(serve.serve)
app.add_typer(tokens.token_app, name="token")
app.add_typer(access.access_app, name="access")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(retention.retention_app, name="retention")


def main() -> None:
    """Entry point: every MeshkitError becomes a message and an exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except MeshkitError as exc:
        render.error(exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        render.err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: bad flag, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            render.err.print(f"error: {exc}")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except Exception:
        if os.environ.get("MESHKIT_DEBUG"):
            traceback.print_exc()
        render.err.print(
            "[bold red]internal error[/bold red]: meshkit hit a bug. Rerun with MESHKIT_DEBUG=1 "
            "for the traceback and report it."
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)
