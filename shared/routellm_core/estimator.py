"""What every router shares, binary or N-way: keyword parameters, a name, the query encoder.

Example:
    >>> from routellm_core.routers import RandomRouter
    >>> RandomRouter(seed=3).get_params()["seed"]
    3
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from routellm_core.encoders import QueryEncoder, get_encoder


class EstimatorParams:
    """scikit-learn-style parameters (every keyword-only ``__init__`` argument up the MRO), the
    router's short name and its encoder. Subclasses set ``router_type`` and ``encoder``."""

    router_type: ClassVar[str] = ""
    encoder: QueryEncoder | str | None

    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            if klass is object:
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
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

    @property
    def name(self) -> str:
        """Short name used in decisions, traces and reports."""
        return self.router_type

    @property
    def encoder_(self) -> QueryEncoder:
        """The query encoder (a shared instance when given by name)."""
        if isinstance(self.encoder, QueryEncoder):
            return self.encoder
        return get_encoder(self.encoder)
