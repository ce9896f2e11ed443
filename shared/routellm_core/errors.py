"""Every exception and warning the library defines, on two common bases.

:class:`RouteLLMError` is the base of every exception raised by ``routellm_core`` and both
adapters, so ``except RouteLLMError`` catches what the library itself refused; each class also
keeps the built-in base it always had (``ValueError``, ``RuntimeError``, ...), so code that
catches those goes on working. :class:`RouteLLMWarning` (a ``UserWarning``) is the base of the
library's warnings, so ``warnings.simplefilter("error", RouteLLMWarning)`` or pytest's
``-W error::routellm_core.errors.RouteLLMWarning`` turns them all into errors at once.

The classes are also importable where they were first defined (``routellm_core.checkpoints.
CheckpointError``, ``routellm_core.routers.NotFittedError``, ...): the same class, not a copy.
This module imports nothing from the library, so any module may import it.

Example:
    >>> from routellm_core.errors import CheckpointError, NotFittedError, RouteLLMError
    >>> issubclass(CheckpointError, RouteLLMError) and issubclass(CheckpointError, ValueError)
    True
    >>> [issubclass(NotFittedError, c) for c in (ValueError, AttributeError)]  # as scikit-learn's
    [True, True]
"""

from __future__ import annotations

__all__ = [
    "BudgetSpent",
    "CheckpointError",
    "DuplicateModelNameWarning",
    "EncoderMismatchError",
    "JudgeError",
    "LocalRuntimeError",
    "ModelFileError",
    "NoQueryText",
    "NonFiniteScoreError",
    "NotFittedError",
    "OnnxEncoderError",
    "RouteLLMError",
    "RouteLLMWarning",
    "RouterFailure",
    "RouterVersionWarning",
    "RoutingSettingWarning",
    "StoreError",
    "UnknownModelError",
    "UnknownPriceWarning",
    "UnpricedModelsError",
]


class RouteLLMError(Exception):
    """Base class of every exception this library defines."""


class RouteLLMWarning(UserWarning):
    """Base class of every warning this library defines."""


# ------------------------------------------------------------------- routers and checkpoints
class NotFittedError(RouteLLMError, ValueError, AttributeError):
    """The router was used before ``fit()`` or loading a checkpoint.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's ``NotFittedError``."""


class CheckpointError(RouteLLMError, ValueError):
    """A checkpoint that is missing, incomplete, corrupt, unsafe or not a router checkpoint."""


class UnknownModelError(RouteLLMError, ValueError):
    """A model name the router has not learned (and no alias maps it onto one it has)."""


class NonFiniteScoreError(RouteLLMError, ValueError):
    """A router produced a NaN or infinite score (corrupt weights, say): a router failure."""


class EncoderMismatchError(RouteLLMError, ValueError):
    """The encoder given to a router is not the one its checkpoint was trained with."""


class OnnxEncoderError(RouteLLMError, RuntimeError):
    """The ONNX export of an encoder could not be made, loaded or verified."""


# ------------------------------------------------------------------------------------ calls
class NoQueryText(RouteLLMError, ValueError):
    """The user's turn holds no text at all (only images or files): there is no text to route
    on. A failure policy decides such a call (:meth:`routellm_core.routing.Pool.unroutable`);
    with ``failure_policy="raise"`` this error is raised."""


class RouterFailure(RouteLLMError, RuntimeError):
    """The router failed (loading or scoring) and the failure policy is ``"raise"``."""


# ------------------------------------------------------------------------------ local models
class ModelFileError(RouteLLMError, RuntimeError):
    """A model file could not be had, or its content is not the expected one."""


class LocalRuntimeError(RouteLLMError, RuntimeError):
    """The local runtime (llama-cpp-python) cannot run a model on this machine."""


# ---------------------------------------------------------------------------------- learning
class StoreError(RouteLLMError, RuntimeError):
    """The traffic store cannot be opened, or a value given to it is invalid."""


class JudgeError(RouteLLMError, ValueError):
    """The judge prompts are missing or malformed."""


class UnpricedModelsError(RouteLLMError, ValueError):
    """A budget was given but some models have no price (``names``), so it cannot be kept."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        super().__init__(f"no price for {self.names}, so a budget cannot be kept; give prices="
                         "{name: (input_per_million, output_per_million)}")

    def __reduce__(self) -> tuple[type[UnpricedModelsError], tuple[list[str]]]:
        return type(self), (self.names,)  # rebuilt from the names, not from the message


class BudgetSpent(RouteLLMError):
    """A paid call was not made because the labelling's budget is spent."""


# ---------------------------------------------------------------------------------- warnings
class DuplicateModelNameWarning(RouteLLMWarning):
    """Two routed models have one guessed name; each was given ``"<name>@<route>"`` instead."""


class UnknownPriceWarning(RouteLLMWarning):
    """A model has no price in the user table nor in the price library: its cost is unknown."""


class RoutingSettingWarning(RouteLLMWarning):
    """A routing setting that is valid but (almost) never or always chooses the strong model."""


class RouterVersionWarning(RouteLLMWarning):
    """A published router version could not be read, loaded or swapped in; the old router stays."""
