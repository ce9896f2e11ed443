"""The public surface: sorted ``__all__`` lists that resolve, and imports that stay light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["routellm_core", "routellm_core.data", "routellm_core.evaluation",
            "routellm_core.routers", "routellm_core.training"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_every_name_exists(name):
    module = importlib.import_module(name)
    assert list(module.__all__) == sorted(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


def test_importing_the_core_loads_no_torch_and_no_weights():
    code = ("import sys, routellm_core, routellm_core.data, routellm_core.evaluation; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
