"""Shared test setup: offline Hugging Face hub, and the location of the shared data sets."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared routing data (``$ROUTELLM_DATA_DIR`` or ``../shared/data``); skip if absent."""
    from routellm_core.data.specs import DATA_DIR_ENV, default_data_dir

    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    found = default_data_dir() or (beside if not os.environ.get(DATA_DIR_ENV) and beside.is_dir() else None)
    if found is None:
        where = os.environ.get(DATA_DIR_ENV)
        pytest.skip(
            f"shared routing data not found at {DATA_DIR_ENV}={where}" if where else
            f"shared routing data not found: set {DATA_DIR_ENV} or place it at ../shared/data "
            "beside the checkout"
        )
    return found


# --------------------------------------------------------------------------- a real PostgreSQL server
POSTGRES_URL_ENV = "ROUTELLM_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a real PostgreSQL server: ``$ROUTELLM_TEST_POSTGRES_URL`` (CI starts one), else a
    throwaway server this session starts (``scripts/postgres_server.py``) where the binaries are
    installed; skipped otherwise, and a failure under CI (``CI`` set), which must run these tests."""
    import importlib.util
    import sys

    from tests.tooling import in_ci

    def unavailable(message: str):
        if in_ci():
            pytest.fail(f"{message}; CI must run the PostgreSQL tests (.ci/run starts a server)")
        pytest.skip(message)

    if importlib.util.find_spec("psycopg") is None:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    given = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if given:
        yield given
        return
    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    sys.path.insert(0, scripts)
    try:
        import postgres_server as helper
    finally:
        sys.path.remove(scripts)
    try:
        server = helper.start()
    except helper.PostgresUnavailable as exc:
        unavailable(f"no PostgreSQL server: {exc}")
    try:
        yield server.url
    finally:
        helper.stop(server.data_dir)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database of its own on the session's PostgreSQL server (dropped afterwards)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_server)
    name = f"routellm_test_{uuid.uuid4().hex[:16]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
