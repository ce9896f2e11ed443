"""One ``errors.py``: every exception the library defines is a ``RouteLLMError``, every warning a
``RouteLLMWarning``, each keeps the built-in base it had, and the old import paths still work."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import warnings

import pytest

from routellm_core import errors
from routellm_core.errors import RouteLLMError, RouteLLMWarning

PACKAGES = ("routellm_core", "langchain_routellm", "llamaindex_routellm")


def _modules() -> list[object]:
    """Every importable module of the three packages (one whose optional dependency is missing
    is left out: it cannot define a class anyone can meet)."""
    out = []
    for name in PACKAGES:
        try:
            pkg = importlib.import_module(name)
        except ImportError:
            continue
        out.append(pkg)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{name}."):
            try:
                out.append(importlib.import_module(info.name))
            except ImportError:
                continue
    return out


def _defined_classes(base: type) -> dict[str, type]:
    """``{module.qualname: class}`` of every subclass of ``base`` defined in the packages, found
    by walking their modules (not a hand list)."""
    found: dict[str, type] = {}
    for module in _modules():
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, base)
                    and obj.__module__.split(".")[0] in PACKAGES):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


@pytest.fixture(scope="module")
def exceptions() -> dict[str, type]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: v for k, v in _defined_classes(BaseException).items() if not issubclass(v, Warning)}


@pytest.fixture(scope="module")
def warning_classes() -> dict[str, type]:
    return _defined_classes(Warning)


def test_the_bases():
    assert issubclass(RouteLLMError, Exception) and not issubclass(RouteLLMError, Warning)
    assert issubclass(RouteLLMWarning, UserWarning)
    import routellm_core

    assert routellm_core.RouteLLMError is RouteLLMError and routellm_core.RouteLLMWarning is RouteLLMWarning


def test_every_exception_the_packages_define_is_a_routellm_error(exceptions):
    assert len(exceptions) >= 15, sorted(exceptions)  # the walk found them (15 public ones today)
    stray = sorted(name for name, cls in exceptions.items() if not issubclass(cls, RouteLLMError))
    assert not stray, f"exceptions that do not subclass RouteLLMError: {stray}"


def test_every_warning_the_packages_define_is_a_routellm_warning(warning_classes):
    assert len(warning_classes) >= 5, sorted(warning_classes)
    stray = sorted(name for name, cls in warning_classes.items() if not issubclass(cls, RouteLLMWarning))
    assert not stray, f"warnings that do not subclass RouteLLMWarning: {stray}"


def test_the_public_classes_are_defined_in_errors_only(exceptions, warning_classes):
    elsewhere = sorted(name for name, cls in {**exceptions, **warning_classes}.items()
                       if cls.__module__ != "routellm_core.errors" and not cls.__name__.startswith("_"))
    assert not elsewhere, f"public exception or warning classes outside routellm_core/errors.py: {elsewhere}"
    public = {cls for cls in {**exceptions, **warning_classes}.values() if not cls.__name__.startswith("_")}
    assert public == {getattr(errors, name) for name in errors.__all__}
    assert errors.__all__ == sorted(errors.__all__)


def test_every_module_that_names_an_error_holds_the_same_class():
    """A name of ``errors.__all__`` found in any module is that class, not a copy."""
    for module in _modules():
        for name in errors.__all__:
            if name in vars(module):
                assert vars(module)[name] is getattr(errors, name), f"{module.__name__}.{name}"


# Where each class was defined before errors.py, and the packages that re-export it.
OLD_PATHS = {
    "CheckpointError": ["routellm_core.checkpoints", "routellm_core"],
    "NotFittedError": ["routellm_core.estimator", "routellm_core.routers.base", "routellm_core.routers",
                       "routellm_core"],
    "UnknownModelError": ["routellm_core.routers.base", "routellm_core.routers", "routellm_core"],
    "NonFiniteScoreError": ["routellm_core.routers.base", "routellm_core.routers"],
    "EncoderMismatchError": ["routellm_core.encoder_probe", "routellm_core"],
    "OnnxEncoderError": ["routellm_core.encoders.onnx_backend", "routellm_core.encoders"],
    "NoQueryText": ["routellm_core.queries"],
    "RouterFailure": ["routellm_core.routing.failure", "routellm_core.routing"],
    "ModelFileError": ["routellm_core.gguf_files"],
    "LocalRuntimeError": ["routellm_core.local_models"],
    "StoreError": ["routellm_core.learning.store", "routellm_core.learning"],
    "JudgeError": ["routellm_core.learning.judge", "routellm_core.learning"],
    "UnpricedModelsError": ["routellm_core.learning.label"],
    "BudgetSpent": ["routellm_core.learning.label", "routellm_core.learning"],
    "DuplicateModelNameWarning": ["routellm_core.naming"],
    "UnknownPriceWarning": ["routellm_core.costs"],
    "RoutingSettingWarning": ["routellm_core.calibration", "routellm_core.routing.pool"],
    "RouterVersionWarning": ["routellm_core.routing.follow", "routellm_core.routing"],
}


@pytest.mark.parametrize("name", sorted(OLD_PATHS))
def test_old_import_paths_give_the_same_class(name):
    for path in OLD_PATHS[name]:
        assert getattr(importlib.import_module(path), name) is getattr(errors, name), f"{path}.{name}"


# The built-in base each class had before errors.py: ``except ValueError`` and the like still catch it.
BUILTIN_BASES = {
    "CheckpointError": ValueError, "UnknownModelError": ValueError, "NonFiniteScoreError": ValueError,
    "EncoderMismatchError": ValueError, "NoQueryText": ValueError, "JudgeError": ValueError,
    "UnpricedModelsError": ValueError, "RouterFailure": RuntimeError, "ModelFileError": RuntimeError,
    "LocalRuntimeError": RuntimeError, "OnnxEncoderError": RuntimeError, "StoreError": RuntimeError,
    "BudgetSpent": Exception, "DuplicateModelNameWarning": UserWarning, "UnknownPriceWarning": UserWarning,
    "RoutingSettingWarning": UserWarning, "RouterVersionWarning": UserWarning,
}


@pytest.mark.parametrize("name", sorted(BUILTIN_BASES))
def test_each_class_keeps_its_builtin_base(name):
    assert issubclass(getattr(errors, name), BUILTIN_BASES[name])


def test_not_fitted_error_is_scikit_learns_kind():
    from routellm_core.routers import MatrixFactorizationRouter

    assert issubclass(errors.NotFittedError, (ValueError, AttributeError))
    assert not issubclass(errors.NotFittedError, RuntimeError)
    router = MatrixFactorizationRouter()
    for catch in (errors.NotFittedError, RouteLLMError, ValueError, AttributeError):
        with pytest.raises(catch, match="not trained"):
            _ = router.known_models
    assert getattr(router, "known_models", "unset") == "unset"  # as hasattr() on an unfitted sklearn model


def test_errors_pickle_with_their_fields():
    again = pickle.loads(pickle.dumps(errors.UnpricedModelsError(["a", "b"])))
    assert again.names == ["a", "b"] and str(again).startswith("no price for ['a', 'b']")
    assert str(pickle.loads(pickle.dumps(errors.CheckpointError("bad file")))) == "bad file"


def test_errors_imports_nothing_from_the_project():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(errors.__file__).read_text())
    names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [n for n in names if n.split(".")[0] in PACKAGES], names
