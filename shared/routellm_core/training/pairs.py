"""The (strong, weak) pair to train: as named on the command line, or read off the battles.

Shared by ``routellm train`` and ``routellm promote``; it lives in the training floor so that
neither command line imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["training_pair"]


def training_pair(
    battles: Any, strong: str | None, weak: str | None, aliases: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """The (strong, weak) pair to train, and how it was chosen: as given, or read off the battles.

    Both given: each must be a model of the data. One or none given: the data must hold exactly
    two models; with none given, the strong one is the model that wins more of their battles.

    Raises:
        ValueError: a model absent from the data, the same model twice, or data that leave
            the pair open (the message lists the data's models).
    """
    from routellm_core.data.schema import canonical_model_name

    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    listed = ", ".join(models)
    named: dict[str, str] = {}
    for flag, name in (("--strong", strong), ("--weak", weak)):
        if name is not None:
            canonical = canonical_model_name(name, aliases)
            if canonical not in models:
                raise ValueError(f"{flag} {name!r} is not a model of the training data; its models: {listed}")
            named[flag] = canonical
    if len(named) == 2:
        if named["--strong"] == named["--weak"]:
            raise ValueError(f"--strong and --weak name the same model {named['--strong']!r}")
        return named["--strong"], named["--weak"], "as given"
    if len(models) != 2:
        raise ValueError(
            f"the training data has {len(models)} models, so the pair is not clear: name it with "
            f"--strong and --weak; the data's models: {listed}"
        )
    if "--strong" in named:
        other = next(m for m in models if m != named["--strong"])
        return named["--strong"], other, "weak: the other model of the data"
    if "--weak" in named:
        other = next(m for m in models if m != named["--weak"])
        return other, named["--weak"], "strong: the other model of the data"
    wins = dict.fromkeys(models, 0)
    for side in ("a", "b"):
        for m, n in battles.loc[battles["winner"] == side, f"model_{side}"].value_counts().items():
            wins[m] += int(n)
    first, second = sorted(models, key=lambda m: -wins[m])
    if wins[first] == wins[second]:
        raise ValueError(
            f"{first} and {second} win equally often ({wins[first]} battles each) in the training "
            "data: name the strong one with --strong"
        )
    return first, second, f"read off the data: {first} wins {wins[first]} battles, {second} {wins[second]}"
