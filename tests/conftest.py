"""Shared test setup: offline Hugging Face hub, and the location of the shared data sets."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

MAX_WORKERS = 4  # each worker loads the encoder and its routers: more would cost memory, not time


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per CPU, at most :data:`MAX_WORKERS`."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n``), every test of the real local models runs on one worker, so
    the llama.cpp models and their HTTP servers are loaded once, not once per worker."""
    for item in items:
        if item.get_closest_marker("local_models") is not None:
            item.add_marker(pytest.mark.xdist_group("local_models"))


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


# --------------------------------------------------------------------------- a real OpenAI-compatible server
@pytest.fixture(scope="session")
def llama_server():
    """llama-cpp-python's OpenAI-compatible server over the two local GGUF models, one endpoint
    per model (``scripts/llama_server.py``): ``$ROUTELLM_TEST_LLAMA_ENDPOINTS`` (a JSON object
    ``{name: base_url}``, strong first; the tests price the two default model names) where given,
    else servers this session starts on free
    127.0.0.1 ports and stops at the end. Yields ``endpoints`` and the ``strong`` / ``weak``
    model names. Skipped where the server extra, the HTTP clients or the models are missing; a
    failure under CI (``CI`` set), which must run these tests."""
    import importlib.util
    import json
    import sys
    from types import SimpleNamespace

    from tests.tooling import in_ci

    def unavailable(message: str):
        if in_ci():
            pytest.fail(f"{message}; CI must run the HTTP provider tests (the test extra installs them)")
        pytest.skip(message)

    for module, package in (("langchain_openai", "langchain-openai"),
                            ("llama_index.llms.openai_like", "llama-index-llms-openai-like")):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            unavailable(f"{package} is not installed (pip install -e '.[test]')")
    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    sys.path.insert(0, scripts)
    try:
        import llama_server as helper
    finally:
        sys.path.remove(scripts)
    given = os.environ.get(helper.ENDPOINTS_ENV, "").strip()
    if given:
        endpoints = json.loads(given)
        strong, weak = list(endpoints)[:2]
        yield SimpleNamespace(endpoints=endpoints, strong=strong, weak=weak)
        return
    if helper.missing_modules():
        unavailable(f"llama-cpp-python's server is not installed ({', '.join(helper.missing_modules())} missing): "
                    "pip install -e '.[test]'")
    try:
        paths = helper.default_model_paths()
    except Exception as exc:  # noqa: BLE001 - a model that is not on disk and cannot be fetched
        unavailable(f"the local GGUF models are not on disk and could not be fetched: {exc}")
    from routellm_core.local_models import check_runtime

    for path in paths.values():
        check_runtime(path)  # a llama.cpp build that crashes on this CPU: a clear error, not a dead server
    server = helper.start(paths)
    strong, weak = helper.DEFAULT_MODELS
    try:
        yield SimpleNamespace(endpoints=server.endpoints, strong=strong, weak=weak, log_files=server.log_files)
    finally:
        helper.stop(*server.pids)


@pytest.fixture
def fault_proxy(llama_server):
    """A fault-injecting proxy (``tests/http_faults.py``) in front of the session's llama servers,
    fresh for each test: one base URL, each request sent on to its model's server."""
    from tests.http_faults import FaultProxy

    with FaultProxy(llama_server.endpoints) as proxy:
        yield proxy
