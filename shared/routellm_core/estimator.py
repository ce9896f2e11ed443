"""What every router shares, binary or N-way: scikit-learn's estimator conventions.

- ``__init__`` only stores its keyword arguments, unchanged: they are the *parameters*
  (:meth:`~EstimatorParams.get_params`, :meth:`~EstimatorParams.set_params`, :func:`clone`),
  and a checkpoint saves them as they are.
- :meth:`fit` (or loading a checkpoint) sets the *learned state*: attributes whose names end in
  ``_``, none of them set before. A class lists the ones that must be there before it can
  score in ``fitted_attributes``; :func:`check_is_fitted` checks them, one check for every router.
- Three learned attributes every router has: ``calibration_`` (the threshold table, set by
  ``calibrate()`` or loading), ``card_`` (the model card, set by training, saving with a
  card, or loading) and ``query_template_`` (the boilerplate lines its training prompts
  shared, stripped from every text before it is embedded or scored, in training and on live
  traffic alike; see :class:`~routellm_core.data.templates.QueryTemplateStripping`). All read
  ``None`` until then.

Example:
    >>> from routellm_core.routers import RandomRouter
    >>> router = RandomRouter(seed=3)
    >>> router.get_params()["seed"]
    3
    >>> clone(router.set_params(seed=4)).seed
    4
    >>> router.set_params(sead=5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter 'sead' for RandomRouter; valid parameters: ['aliases', ..., 'weak_model']
"""

from __future__ import annotations

import copy
import inspect
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from routellm_core.data.templates import QueryTemplateStripping
from routellm_core.encoder_probe import check_router_encoder
from routellm_core.encoders import QueryEncoder, get_encoder
from routellm_core.errors import NotFittedError

if TYPE_CHECKING:
    from routellm_core.calibration import CalibrationTable

__all__ = ["EstimatorParams", "NotFittedError", "check_is_fitted", "clone", "is_fitted"]

E = TypeVar("E", bound="EstimatorParams")


class EstimatorParams(QueryTemplateStripping):
    """scikit-learn-style parameters (every keyword-only ``__init__`` argument up the MRO), the
    router's short name, its encoder, and the fitted check. What a router reads of each query
    (:meth:`query_text`, without its ``query_template_``) comes from
    :class:`~routellm_core.data.templates.QueryTemplateStripping`.

    Subclasses set ``router_type``, store every ``__init__`` argument under its own name, and
    list in ``fitted_attributes`` the learned attributes that ``fit()`` and loading set (empty
    for a router with nothing to learn, such as the random baseline).
    """

    router_type: ClassVar[str] = ""
    fitted_attributes: ClassVar[tuple[str, ...]] = ()
    encoder: QueryEncoder | str | None

    # Learned state every router may carry; ``None`` until set (see the module docstring).
    calibration_: CalibrationTable | None = None
    card_: dict[str, Any] | None = None

    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            init = vars(klass).get("__init__")
            if klass is object or init is None:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind == p.KEYWORD_ONLY and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-ready (the encoder as its name)."""
        params = {name: getattr(self, name) for name in self._param_names()}
        if isinstance(params.get("encoder"), QueryEncoder):
            params["encoder"] = params["encoder"].name
        if params.get("aliases") is not None:
            params["aliases"] = dict(params["aliases"])
        return params

    def set_params(self: E, **params: Any) -> E:
        """Set constructor parameters by name; returns the router.

        Learned state is left as it is: refit (or :func:`clone` and fit) for new parameters
        to take effect on what was learned. An unknown name raises a ``ValueError`` naming it
        and the valid ones, before anything is set.
        """
        valid = self._param_names()
        unknown = [name for name in params if name not in valid]
        if unknown:
            raise ValueError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(n) for n in unknown)} for {type(self).__name__}; "
                f"valid parameters: {sorted(valid)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _check_fitted(self) -> None:
        check_is_fitted(self)

    @property
    def name(self) -> str:
        """Short name used in decisions, traces and reports."""
        return self.router_type

    @property
    def encoder_(self) -> QueryEncoder:
        """The query encoder (a shared instance when given by name). A loaded router first checks
        that it reproduces the checkpoint's probe vectors
        (:func:`~routellm_core.encoder_probe.check_router_encoder`)."""
        enc = self.encoder if isinstance(self.encoder, QueryEncoder) else get_encoder(self.encoder)
        check_router_encoder(self, enc)
        return enc


def is_fitted(router: EstimatorParams) -> bool:
    """Whether every attribute in ``fitted_attributes`` of ``router`` is set."""
    return all(getattr(router, name, None) is not None for name in type(router).fitted_attributes)


def check_is_fitted(router: EstimatorParams) -> None:
    """:class:`NotFittedError` naming the router unless it is fitted (or loaded).

    Example:
        >>> from routellm_core.routers import MatrixFactorizationRouter
        >>> check_is_fitted(MatrixFactorizationRouter())
        Traceback (most recent call last):
        ...
        routellm_core.errors.NotFittedError: this mf router is not trained: call fit() or load a checkpoint
    """
    if not is_fitted(router):
        raise NotFittedError(
            f"this {router.router_type or type(router).__name__} router is not trained: call fit() "
            "or load a checkpoint"
        )


def clone(router: E, **params: Any) -> E:
    """A new, unfitted router of the same class with the same parameters (``params`` override).

    Parameters are deep-copied, except a :class:`~routellm_core.encoders.QueryEncoder`
    instance, which is shared (it holds no learned state, and its model and cache are
    expensive to build twice).

    Example:
        >>> from routellm_core.routers import SWRankingRouter
        >>> twin = clone(SWRankingRouter(n_tiers=4), strong_model="big")
        >>> twin.n_tiers, twin.strong_model
        (4, 'big')
    """
    if not isinstance(router, EstimatorParams):
        raise TypeError(f"clone() needs a router, got {type(router).__name__}")
    current = {name: getattr(router, name) for name in router._param_names()}
    copied = {
        name: value if isinstance(value, QueryEncoder) else copy.deepcopy(value)
        for name, value in current.items()
    }
    return type(router)(**copied).set_params(**params)
