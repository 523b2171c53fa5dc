"""`ltr studies dashboard`: optuna-dashboard on a study storage (``pip install -e
'.[dashboard]'``), bound to 127.0.0.1 unless --host says otherwise: the dashboard has no login,
and it can change studies (notes, trial states), so it is not exposed by default."""

from typing import Annotated

import typer

from ltr.cli.boundary import command
from ltr.cli.common import say
from ltr.errors import LtrError, install_hint


def register(studies_app: typer.Typer, storage_option: object) -> None:
    """Add `dashboard` to the `ltr studies` group, with that group's --storage option."""

    def dashboard(
        storage: storage_option = None,  # type: ignore[valid-type]  # evaluated now: no __future__ import
        port: Annotated[
            int, typer.Option("--port", "-p", min=1, max=65535, help="Port to listen on.")
        ] = 8080,
        host: Annotated[
            str,
            typer.Option(
                "--host",
                help="Address to listen on; 0.0.0.0 exposes the dashboard (no login!) to the "
                "network.",
            ),
        ] = "127.0.0.1",
    ) -> None:
        """Browse the studies live in optuna-dashboard (Ctrl-C stops it)."""
        from ltr.tuning.storage import open_storage, redact_url, storage_url

        try:
            from optuna_dashboard import run_server
        except ImportError:
            raise LtrError(
                f"the dashboard needs optuna-dashboard: {install_hint('dashboard')}"
            ) from None
        url = storage_url(storage)
        store = open_storage(url, must_exist=True)
        shown = f"[{host}]" if ":" in host else host
        say(f"optuna-dashboard for {redact_url(url)} on http://{shown}:{port}/ (Ctrl-C stops it)")
        try:
            run_server(store, host=host, port=port)
        except OSError as error:
            raise LtrError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        except KeyboardInterrupt:
            say("dashboard stopped")

    command(studies_app, "dashboard")(dashboard)
