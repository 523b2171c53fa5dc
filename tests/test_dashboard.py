"""`ltr studies dashboard`: a real optuna-dashboard process on a free loopback port; its JSON API
lists the study; Ctrl-C stops it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from services import free_port, wait_for

from ltr.data.synthetic import write_synthetic
from ltr.tuning.objective import CVProtocol, load_tuning_data
from ltr.tuning.runner import tune

LTR = [sys.executable, "-c", "from ltr.cli.main import main; main()"]


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.slow
@pytest.mark.parametrize("host", [None, "127.0.0.2"])
def test_dashboard_serves_the_studies_on_loopback(tmp_path: Path, host: str | None) -> None:
    """Bound to 127.0.0.1 unless --host says otherwise (here another loopback address)."""
    pytest.importorskip("optuna_dashboard")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    write_synthetic(tmp_path / "synth", n_users=150, seed=1)
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    data = load_tuning_data(tmp_path / "synth")
    tune(data, "dash", storage=db, space="ridge", protocol=CVProtocol(3, 1, 0), n_trials=2)
    port = free_port()
    address = host or "127.0.0.1"
    hexed = "".join(f"{int(part):02X}" for part in reversed(address.split(".")))
    process = subprocess.Popen(
        [*LTR, "studies", "dashboard", "--storage", db, "--port", str(port)]
        + (["--host", host] if host else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found: dict = {}

        def listed() -> bool:
            assert process.poll() is None, process.communicate()[0]
            found["api"] = _get(f"http://{address}:{port}/api/studies")
            return found["api"] is not None

        wait_for(listed, timeout=90, interval=0.3, what="the dashboard's /api/studies")
        names = [s["study_name"] for s in found["api"]["study_summaries"]]
        assert names == ["dash"]
        # bound to that address only, not every interface
        with open("/proc/net/tcp", encoding="ascii") as table:
            listening = [
                line.split()[1] for line in table.readlines()[1:] if line.split()[3] == "0A"
            ]
        assert f"{hexed}:{port:04X}" in listening and f"00000000:{port:04X}" not in listening
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert f"on http://{address}:{port}/" in output
    assert "Traceback" not in output
