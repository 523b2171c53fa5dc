"""`ltr studies dashboard`: optuna-dashboard on a study storage (``pip install
'ltr[dashboard]'``), bound to 127.0.0.1 unless --host says otherwise: the dashboard has no
login, and it can change studies (notes, trial states), so it is not exposed by default."""

from __future__ import annotations

import typer

from ltr.cli.common import console, handle_errors
from ltr.errors import LtrError
from ltr.tuning.storage import DEFAULT_STORAGE, STORAGE_ENV


def register(app: typer.Typer) -> None:
    """Add `dashboard` to the `ltr studies` group (registered by study_commands)."""
    for group in app.registered_groups:
        if group.name == "studies" and group.typer_instance is not None:
            group.typer_instance.command("dashboard")(dashboard_command)
            return
    raise RuntimeError("the `studies` command group must be registered first")


@handle_errors
def dashboard_command(
    storage: str | None = typer.Option(
        None,
        "--storage",
        envvar=STORAGE_ENV,
        help=f"Optuna storage URL (default ${STORAGE_ENV}, else {DEFAULT_STORAGE}).",
    ),
    port: int = typer.Option(8080, "--port", "-p", min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on; 0.0.0.0 exposes the dashboard (no login!) to the network.",
    ),
) -> None:
    """Browse the studies live in optuna-dashboard (Ctrl-C stops it)."""
    from ltr.tuning.storage import open_storage, redact_url, storage_url

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise LtrError(
            "the dashboard needs optuna-dashboard: pip install 'ltr[dashboard]'"
        ) from None
    url = storage_url(storage)
    store = open_storage(url, must_exist=True)
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"optuna-dashboard for {redact_url(url)} on http://{shown}:{port}/ (Ctrl-C stops it)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    try:
        run_server(store, host=host, port=port)
    except OSError as error:
        raise LtrError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    except KeyboardInterrupt:
        pass
