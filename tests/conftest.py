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
