"""Threshold <-> share of strong calls.

A router sends a query to the strong model when ``win_rate >= threshold``. Users think in the
share of calls that go strong; a :class:`CalibrationTable` built from the router's win rates on
representative unlabelled prompts converts one into the other (a quantile of the win rates).

Example:
    >>> import numpy as np
    >>> from routellm_core.calibration import CalibrationTable
    >>> table = CalibrationTable.from_win_rates(np.linspace(0, 1, 1001), source="demo")
    >>> round(table.threshold_for(0.3), 3)
    0.7
    >>> round(table.strong_fraction_for(0.7), 3)
    0.3
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routellm_core.data_dir import DATA_DIR_ENV
from routellm_core.errors import RoutingSettingWarning

_GRID = np.linspace(0.0, 1.0, 101)


def _check_unit_interval(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    out = float(value)
    if not 0.0 <= out <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return out


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise unless it is a number in [0, 1]."""
    return _check_unit_interval("threshold", threshold)


def check_strong_fraction(strong_fraction: float) -> float:
    """Return ``strong_fraction`` as a float, or raise unless it is a number in [0, 1]."""
    return _check_unit_interval("strong_fraction", strong_fraction)


@dataclass(frozen=True)
class CalibrationTable:
    """Thresholds for strong-call shares 0.00, 0.01, ..., 1.00 on a set of prompts.

    ``thresholds[i]`` is the threshold at which a share ``strong_fractions[i]`` of the
    calibration prompts has ``win_rate >= threshold``.
    """

    strong_fractions: tuple[float, ...]
    thresholds: tuple[float, ...]
    source: str = ""
    n_prompts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_win_rates(cls, win_rates: np.ndarray, *, source: str = "") -> CalibrationTable:
        """Build the table from a router's win rates on unlabelled prompts."""
        wr = np.asarray(win_rates, dtype=np.float64).ravel()
        if wr.size == 0:
            raise ValueError("cannot calibrate on zero prompts")
        if not np.all(np.isfinite(wr)):
            raise ValueError("win rates contain NaN or infinite values")
        # share f strong <=> threshold at the (1 - f) quantile; 'lower' keeps thresholds on
        # observed values so that >= selects at least the requested share.
        th = np.quantile(wr, 1.0 - _GRID, method="lower")
        # share 0: a threshold above every observed win rate (capped at 1.0).
        th[0] = min(1.0, float(np.nextafter(wr.max(), np.inf)))
        return cls(
            strong_fractions=tuple(float(f) for f in _GRID),
            thresholds=tuple(float(np.clip(t, 0.0, 1.0)) for t in th),
            source=source,
            n_prompts=int(wr.size),
        )

    def threshold_for(self, strong_fraction: float) -> float:
        """The threshold that sends about ``strong_fraction`` of calls to the strong model."""
        f = check_strong_fraction(strong_fraction)
        # thresholds fall as the share rises; np.interp needs increasing x.
        return float(np.interp(f, self.strong_fractions, self.thresholds))

    def strong_fraction_for(self, threshold: float) -> float:
        """The share of calibration prompts that ``threshold`` would send to the strong model."""
        t = check_threshold(threshold)
        th = np.asarray(self.thresholds)[::-1]
        fr = np.asarray(self.strong_fractions)[::-1]
        return float(np.interp(t, th, fr))

    def to_dict(self) -> dict[str, Any]:
        return {
            "strong_fractions": list(self.strong_fractions),
            "thresholds": list(self.thresholds),
            "source": self.source,
            "n_prompts": self.n_prompts,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationTable:
        try:
            fr = tuple(float(x) for x in data["strong_fractions"])
            th = tuple(float(x) for x in data["thresholds"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed calibration table: {exc}") from exc
        if len(fr) != len(th) or len(fr) < 2:
            raise ValueError("malformed calibration table: fractions and thresholds differ in length")
        for name, values in (("strong_fractions", fr), ("thresholds", th)):
            if not all(0.0 <= v <= 1.0 for v in values):  # NaN fails too
                raise ValueError(f"malformed calibration table: {name} must be numbers in [0, 1]")
        if any(b <= a for a, b in zip(fr, fr[1:])) or any(b > a for a, b in zip(th, th[1:])):
            raise ValueError(
                "malformed calibration table: strong_fractions must rise and thresholds must not"
            )
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise ValueError("malformed calibration table: extra must be a mapping")
        try:
            n_prompts = int(data.get("n_prompts", 0))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed calibration table: n_prompts: {exc}") from exc
        return cls(fr, th, str(data.get("source", "")), n_prompts, dict(extra))


ONE_SIDED_SHARE = 0.02  # a threshold that sends less than this share, or more than 1 - it, one way is warned about


def describe_source(source: str) -> str:
    """A calibration table's ``source`` for people: ``{data}`` (the data directory a spec names)
    written as where it is, ``$ROUTELLM_DATA_DIR``.

    Example:
        >>> describe_source("{data}/arena_hard_prompts/a.jsonl, {data}/arena_hard_prompts/b.jsonl")
        'arena_hard_prompts/a.jsonl, arena_hard_prompts/b.jsonl in $ROUTELLM_DATA_DIR'
        >>> describe_source("")
        'no source recorded'
    """
    if not source:
        return "no source recorded"
    parts = [p.strip() for p in source.split(",")]
    if not any("{data}" in p for p in parts):
        return source
    names = [p.replace("{data}/", "").replace("{data}", "") or "." for p in parts]
    return f"{', '.join(names)} in ${DATA_DIR_ENV}"


def warn_one_sided(router: Any, threshold: float, *, stacklevel: int = 4) -> None:
    """Warn when ``threshold`` would send (almost) all of the router's calibration prompts to one
    model: a raw threshold set by intuition on a router whose win rates sit in a narrow band."""
    table = router.calibration_
    share = table.strong_fraction_for(threshold)
    if ONE_SIDED_SHARE <= share <= 1 - ONE_SIDED_SHARE:
        return
    low, high = min(table.thresholds), max(table.thresholds)
    import warnings

    warnings.warn(
        f"threshold={threshold} sends {share:.0%} of router {router.name}'s calibration prompts "
        f"({table.n_prompts} prompts: {describe_source(table.source)}) to the strong model: its win rates "
        f"there lie between {low:.3f} and {high:.3f}. Set strong_fraction= (a share of strong calls) "
        "instead, or calibrate on your own prompts (routellm calibrate).",
        RoutingSettingWarning, stacklevel=stacklevel)
