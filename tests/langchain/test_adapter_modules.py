"""The LangChain adapter's modules: the core's adapter layer used, not copied; the old
``langchain_routellm.learning`` path deprecated but working; no module over 500 lines."""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import langchain_routellm
from routellm_core import adapter

PACKAGE = Path(langchain_routellm.__file__).parent


def test_no_module_of_the_adapter_is_over_500_lines():
    long = {p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_only_the_deprecated_shim_imports_the_old_learning_path():
    importers = []
    for path in [*PACKAGE.glob("*.py"), *Path(adapter.__file__).parent.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if "langchain_routellm.learning" in names:
                importers.append(path.name)
    assert importers == []


def test_the_routed_classes_use_the_cores_adapter_layer():
    from langchain_routellm import ChatRouteLLM, RouterRunnable
    from langchain_routellm._routed import RoutingMixin

    assert issubclass(ChatRouteLLM, RoutingMixin) and issubclass(RouterRunnable, RoutingMixin)
    assert ChatRouteLLM.model_fields["capture"].description == adapter.CAPTURE_HELP
    assert ChatRouteLLM.model_fields["shadow"].description == adapter.SHADOW_HELP
    assert RouterRunnable.model_fields["fallback"].description == adapter.FALLBACK_HELP
    from langchain_core.runnables import RunnableLambda

    runnable = RouterRunnable(strong=RunnableLambda(lambda x: x), weak=RunnableLambda(lambda x: x),
                              names={"strong": "big", "weak": "small"}, threshold=0.5)
    assert isinstance(runnable._routing, adapter.PoolHolder)
    assert runnable.branch_names() == ("big", "small")
    for old in ("PoolHolder", "check_capture", "check_shadow", "rate_call", "hand_on", "CALL_ID_KEY"):
        for module in ("langchain_routellm._loop", "langchain_routellm._routed", "langchain_routellm._translate"):
            defined = importlib.import_module(module).__dict__.get(old)
            assert defined is None or defined is getattr(adapter, old), (module, old)


@pytest.mark.parametrize("name,new", [("PoolHolder", adapter.PoolHolder), ("CALL_ID_KEY", adapter.CALL_ID_KEY),
                                      ("check_shadow", adapter.check_shadow),
                                      ("CAPTURE_DESCRIPTION", adapter.CAPTURE_HELP)])
def test_the_old_learning_module_warns_and_gives_the_new_objects(name, new):
    module = importlib.import_module("langchain_routellm.learning")
    with pytest.warns(DeprecationWarning, match=f"langchain_routellm.learning.{name} is deprecated"):
        assert getattr(module, name) is new
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_the_old_learning_functions_keep_their_signatures():
    from langchain_routellm._loop import Collected

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_routellm.learning import Collected as OldCollected
        from langchain_routellm.learning import check_capture, rate_call
    assert OldCollected is Collected
    assert check_capture(None) is None
    with pytest.raises(ValueError, match="has none: build it with capture="):
        rate_call(None, "id", "up", None)
