"""The ``ragkit`` command: parse options, call the Engine, render with rich (or JSON). No business logic.

Each command group lives in its own module (``index``, ``query``, ``evaluate``, ``serve``, ``finetune``); options and
helpers they share are in ``common``, every progress display in ``progress``.
"""

from __future__ import annotations

import sys

import typer

from ragkit.cli import evaluate, finetune, index, query, serve
from ragkit.cli.common import err
from ragkit.errors import RagkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="ragkit: ingest documents into a hybrid (BM25 + dense) index, query it with cited "
                       "answers, and measure which retrieval optimizations help. Works offline.")
app.command("ingest")(index.ingest)
app.command("query")(query.query)
app.command("eval")(evaluate.eval_)
app.command("ablate")(evaluate.ablate)
app.command("tune")(evaluate.tune)
app.command("plugins")(index.plugins)
app.command("info")(index.info)
app.command("tables")(index.tables)
app.command("serve")(serve.serve)
app.add_typer(finetune.app, name="finetune")


def main() -> None:
    """The console entry point: run the app; a RagkitError is one ``error: ...`` line and exit code 2."""
    try:
        rc = app(standalone_mode=False)  # click returns the code of a typer.Exit instead of raising it
        sys.exit(rc if isinstance(rc, int) else 0)
    except RagkitError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(130)
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        exc.show()  # click usage errors carry their own message and exit code
        sys.exit(exc.exit_code)


def _is_usage_error(exc: Exception) -> bool:
    """A click usage error: click's own, or the copy of click that typer >= 0.2x bundles (a TyperException)."""
    kinds = (getattr(typer, "TyperException", None), getattr(sys.modules.get("click"), "ClickException", None))
    return any(k is not None and isinstance(exc, k) for k in kinds) and hasattr(exc, "show")
