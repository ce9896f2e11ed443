"""Constraint functions of Tryage's objective: a number per model that routing weighs against quality.

A :class:`Constraint` maps each model of a pool to a value (dollars per call, billions of
parameters, seconds of latency, or any flag the user defines). Routing maximises
``quality(m) - sum_j lambda_j * C_j(m)``. By default a constraint is *normalised*: divided by
its largest absolute value over the pool, so ``lambda = 0.1`` reads "give up 0.1 of quality
(10 points of accuracy) to move from the most expensive model to a free one", whatever the unit.

Example:
    >>> from routellm_core.nway.constraints import Constraint, cost_per_call, model_size
    >>> cost = cost_per_call({"big": (10.0, 30.0), "small": (0.5, 1.5)})
    >>> cost.values
    {'big': 0.02, 'small': 0.001}
    >>> cost.vector(["small", "big"]).tolist()
    [0.05, 1.0]
    >>> model_size({"big": "70B", "small": "8B"}).values
    {'big': 70.0, 'small': 8.0}
    >>> Constraint("on_prem", {"big": 0.0, "small": 1.0}, normalize=False).vector(["big"]).tolist()
    [0.0]
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.data.schema import canonical_model_name

__all__ = [
    "Constraint",
    "check_lambdas",
    "cost_per_call",
    "load_price_table",
    "mean_cost",
    "model_size",
]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmMkKtT]?)\s*$")
_SIZE_UNIT = {"": 1.0, "b": 1.0, "m": 1e-3, "k": 1e-6, "t": 1e3}


@dataclass(frozen=True)
class Constraint:
    """One constraint: a value per model, weighed by its ``lambda`` in the objective.

    Args:
        name: the key its weight is given under (``lambdas={"cost": 0.2}``).
        values: ``{model: value}``; finite numbers, one per model of the pool.
        normalize: divide by the largest absolute value over the models routed among.
        unit: what a raw value measures, for reports (``"$ per call"``, ``"B params"``).
    """

    name: str
    values: Mapping[str, float]
    normalize: bool = True
    unit: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a constraint needs a non-empty name, got {self.name!r}")
        if not isinstance(self.values, Mapping) or not self.values:
            raise ValueError(
                f"constraint {self.name!r} needs a non-empty {{model: value}} mapping"
            )
        clean: dict[str, float] = {}
        for model, value in self.values.items():
            if isinstance(value, bool) or not isinstance(
                value, (int, float, np.floating, np.integer)
            ):
                raise TypeError(
                    f"constraint {self.name!r}: value of {model!r} must be a number, got {value!r}"
                )
            if not math.isfinite(float(value)):
                raise ValueError(
                    f"constraint {self.name!r}: value of {model!r} is not finite: {value!r}"
                )
            clean[str(model)] = float(value)
        object.__setattr__(self, "values", clean)

    def raw(self, models: Sequence[str]) -> np.ndarray:
        """Raw values for ``models`` in order; a model with no value is a ``KeyError`` naming it."""
        missing = [m for m in models if m not in self.values]
        if missing:
            raise KeyError(
                f"constraint {self.name!r} has no value for {missing}; it covers {sorted(self.values)}"
            )
        return np.array([self.values[m] for m in models], dtype=np.float64)

    def vector(self, models: Sequence[str]) -> np.ndarray:
        """Values for ``models`` as used in the objective (normalised when ``normalize``)."""
        v = self.raw(models)
        if self.normalize:
            scale = float(np.abs(v).max())
            if scale > 0:
                v = v / scale
        return v

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in N-way checkpoints)."""
        return {
            "name": self.name,
            "values": dict(self.values),
            "normalize": self.normalize,
            "unit": self.unit,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constraint:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                name=data["name"],
                values=data["values"],
                normalize=bool(data.get("normalize", True)),
                unit=str(data.get("unit", "")),
                meta=dict(data.get("meta") or {}),
            )
        except KeyError as exc:
            raise ValueError(
                f"a constraint record needs {exc.args[0]!r}: {dict(data)!r:.200}"
            ) from None


def check_lambdas(
    lambdas: Mapping[str, float] | None, constraints: Sequence[Constraint]
) -> dict[str, float]:
    """Validate ``{constraint name: lambda}``: known names, finite numbers.

    A positive weight penalises the constraint (cheaper is better); a negative one rewards it
    (prefer larger or costlier models, as the high-quality end of an evaluation sweep does).

    Example:
        >>> c = Constraint("cost", {"a": 1.0})
        >>> check_lambdas({"cost": 0.5}, [c])
        {'cost': 0.5}
        >>> check_lambdas({"latency": 1.0}, [c])
        Traceback (most recent call last):
        ...
        ValueError: lambda given for unknown constraint 'latency'; the constraints are ['cost']
    """
    if lambdas is None:
        return {}
    if not isinstance(lambdas, Mapping):
        raise TypeError(
            f"lambdas must be a mapping {{constraint name: weight}}, got {type(lambdas).__name__}"
        )
    names = [c.name for c in constraints]
    out: dict[str, float] = {}
    for name, value in lambdas.items():
        if name not in names:
            raise ValueError(
                f"lambda given for unknown constraint {name!r}; the constraints are {names}"
            )
        if isinstance(value, bool) or not isinstance(
            value, (int, float, np.floating, np.integer)
        ):
            raise TypeError(f"lambda of {name!r} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(
                f"lambda of {name!r} must be a finite number, got {value!r}"
            )
        out[name] = float(value)
    return out


def cost_per_call(
    prices: Mapping[str, tuple[float, float]] | Any,
    models: Sequence[str] | None = None,
    *,
    input_tokens: int = 500,
    output_tokens: int = 500,
    name: str = "cost",
) -> Constraint:
    """Dollars per call of each model: ``input_tokens`` in and ``output_tokens`` out at its price.

    ``prices`` is ``{model: (input_per_million, output_per_million)}`` or a
    :class:`~routellm_core.costs.PriceSource` (then ``models`` lists the models to price; a
    model with no known price is a ``KeyError``).
    """
    from routellm_core.costs import PriceSource

    source = (
        prices
        if isinstance(prices, PriceSource)
        else PriceSource(prices, use_library=False)
    )
    names = list(models) if models is not None else list(source.prices)
    if not names:
        raise ValueError("cost_per_call needs models to price")
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts must be >= 0")
    values: dict[str, float] = {}
    for m in names:
        if not source.use_library and m not in source.prices:
            raise KeyError(f"no price for model {m!r}: add it to the price table")
        c = source.cost(m, input_tokens=input_tokens, output_tokens=output_tokens)
        if c is None:
            raise KeyError(f"no price for model {m!r}: add it to the price table")
        values[m] = float(c)
    return Constraint(
        name,
        values,
        unit="$ per call",
        meta={"input_tokens": input_tokens, "output_tokens": output_tokens},
    )


def mean_cost(
    costs: np.ndarray, models: Sequence[str], *, name: str = "cost"
) -> Constraint:
    """Each model's mean per-query cost over data that record it (RouterBench's ``total_cost``)."""
    arr = np.asarray(costs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(models) or arr.shape[0] == 0:
        raise ValueError(f"costs must be (n_queries, {len(models)}), got {arr.shape}")
    with np.errstate(invalid="ignore"):
        counts = (~np.isnan(arr)).sum(axis=0)
        means = np.where(
            counts > 0, np.nansum(arr, axis=0) / np.maximum(counts, 1), np.nan
        )
    if not np.all(np.isfinite(means)):
        bad = [m for m, v in zip(models, means) if not np.isfinite(v)]
        raise ValueError(f"no cost recorded for {bad}")
    return Constraint(
        name, dict(zip(models, means.tolist())), unit="$ per query (mean of the data)"
    )


def _parse_size(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return float(m.group(1)) * _SIZE_UNIT[m.group(2).lower()]
    raise ValueError(
        f"cannot read a model size from {value!r}; use a number of billions or '7B'"
    )


def model_size(sizes: Mapping[str, float | str], *, name: str = "size") -> Constraint:
    """Model size in billions of parameters (numbers, or strings such as ``"7B"``, ``"141B"``)."""
    return Constraint(
        name, {m: _parse_size(v) for m, v in sizes.items()}, unit="B params"
    )


def load_price_table(path: str | os.PathLike[str]) -> dict[str, tuple[float, float]]:
    """Read prices (dollars per million tokens) from JSON, keyed by canonical model name.

    Two layouts: ``{model: [input, output]}``, or LLMRouter's candidates file
    ``{model: {"input_price": ..., "output_price": ..., ...}}``.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "prices.json"
        >>> _ = f.write_text(json.dumps({"Org/Big": {"input_price": 0.9, "output_price": 0.9}}))
        >>> load_price_table(f)
        {'big': (0.9, 0.9)}
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such price file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{p}: expected a JSON object {{model: prices}}")
    out: dict[str, tuple[float, float]] = {}
    for model, entry in data.items():
        if isinstance(entry, dict) and {"input_price", "output_price"} <= set(entry):
            pair = (entry["input_price"], entry["output_price"])
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            pair = tuple(entry)
        else:
            raise ValueError(
                f"{p}: price of {model!r} must be [input, output] or have "
                f"input_price/output_price, got {entry!r:.100}"
            )
        try:
            out[canonical_model_name(model)] = (float(pair[0]), float(pair[1]))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{p}: price of {model!r} is not numeric: {entry!r:.100}"
            ) from exc
    return out
