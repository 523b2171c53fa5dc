"""Shared fixtures: where the real data lives (if anywhere) and small generated data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: (learner, params, the one line the back-end's refusal becomes): shared by the library tests
#: (tests/test_models.py) and the CLI ones (tests/test_model_cli.py).
BACKEND_REFUSALS = [
    (
        "xgb-regression",
        {"max_depth": -1},
        "xgb-regression: XGBoost refused parameter 'max_depth' = -1: value -1 for Parameter "
        "max_depth should be greater equal to 0",
    ),
    (
        "lgbm-regression",
        {"num_leaves": 1},
        "lgbm-regression: LightGBM refused parameter 'num_leaves' = 1: Check failed: "
        "(num_leaves) > (1)",
    ),
]


def shared_data_root() -> Path:
    """`../shared/data` next to the project, or `$LTR_SHARED_DATA`."""
    return Path(os.environ.get("LTR_SHARED_DATA", ROOT.parent / "shared" / "data"))


def real_data(name: str) -> Path:
    """Path of a real data set, or skip the test on machines without it."""
    path = shared_data_root() / name
    if not path.is_dir():
        pytest.skip(f"real data set {name!r} not found under {shared_data_root()}")
    return path


@pytest.fixture(scope="session")
def aware2023() -> Path:
    return real_data("aware2023")


@pytest.fixture(scope="session")
def lervup2021() -> Path:
    return real_data("lervup2021")


# ------------------------------------------------------ real services (tests/services.py)
@pytest.fixture(scope="session")
def test_machine():
    """A second machine (network namespace over a veth pair), or None where none can be made;
    tests that need it call `services.unavailable`."""
    from services import TestMachine, Unavailable

    try:
        machine = TestMachine.create()
    except Unavailable as error:
        yield error
        return
    try:
        yield machine
    finally:
        machine.remove()


@pytest.fixture(scope="session")
def postgres_server(test_machine):
    """A throwaway PostgreSQL cluster for the session (loopback, plus the test machine's veth
    address when there is one); skipped (or failed under LTR_REQUIRE_SERVICES=1) without one."""
    from services import PostgresServer, TestMachine, Unavailable, unavailable

    try:
        import psycopg  # noqa: F401  (the driver of the ltr[postgres] extra)
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    machine = test_machine if isinstance(test_machine, TestMachine) else None
    try:
        server = PostgresServer.start(
            extra_hosts=[machine.host_address] if machine else None,
            trusted_net=machine.network if machine else None,
        )
    except Unavailable as error:
        unavailable(str(error))
    try:
        yield server
    finally:
        server.stop()
