"""Writing a router to a checkpoint directory: weights, config with its sha256 manifest, model card."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from routellm_core.checkpoints.card import render_card
from routellm_core.checkpoints.format import (
    CARD_NAME,
    FORMAT,
    FORMAT_VERSION,
    TEMPLATE_FORMAT_VERSION,
    WEIGHTS_NAME,
    _check_name,
    _listed_files,
    _sha256,
    _write_config,
)
from routellm_core.checkpoints.hooks import CheckpointHooks
from routellm_core.encoder_probe import encoder_probe
from routellm_core.errors import CheckpointError
from routellm_core.estimator import EstimatorParams, check_is_fitted

__all__ = ["save_router"]


def save_router(
    router: CheckpointHooks, path: str | os.PathLike[str], *, card: dict[str, Any] | None = None
) -> Path:
    """Write ``router`` (binary or N-way) to the directory ``path`` (created if needed); returns the path.

    ``card`` (data sources, licenses, counts, metrics, command) goes into the config and the
    README model card; it is also kept on the router as ``router.card_``. The sha256 of the
    weights, the card and any file the router's ``_save_files`` hook writes go into the config.

    Example:
        >>> import json, tempfile
        >>> from routellm_core.routers import RandomRouter
        >>> out = save_router(RandomRouter(seed=1), tempfile.mkdtemp())
        >>> sorted(json.loads((out / "config.json").read_text())["files"])
        ['README.md']
    """
    from safetensors.numpy import save_file

    if not isinstance(router, EstimatorParams):
        raise TypeError(f"save_router() needs a router, got {type(router).__name__}")
    check_is_fitted(router)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if card is not None:
        router.card_ = dict(card)
    card_data = dict(router.card_ or {})
    arrays = {k: np.ascontiguousarray(v) for k, v in router._state().items()}
    names: list[str] = []
    if arrays:
        save_file(arrays, str(out / WEIGHTS_NAME))
        names.append(WEIGHTS_NAME)
    elif (out / WEIGHTS_NAME).exists():
        (out / WEIGHTS_NAME).unlink()
    for name in router._save_files(out):
        names.append(_check_name(out, PurePosixPath(name).as_posix()))
    config = {
        "format": FORMAT,
        "format_version": TEMPLATE_FORMAT_VERSION if router.query_template_ else FORMAT_VERSION,
        "router_type": router.router_type,
        "params": router.get_params(),
        "state": router._extra_state(),
        "calibration": router.calibration_.to_dict() if router.calibration_ else None,
        "encoder_probe": encoder_probe(router.encoder_) if router.uses_encoder else None,
        "query_template": router.query_template_.to_lines() if router.query_template_ else None,
        "card": card_data,
        "files": {},
    }
    (out / CARD_NAME).write_text(render_card(router.router_type, card_data, config))
    names.append(CARD_NAME)
    files = {name: _sha256(out / name) for name in sorted(set(names))}
    config["files"] = files
    _write_config(out, config)
    stray = [n for n in _listed_files(out) if n not in files]
    if stray:  # it would be refused at load: say so now, while the cause is known
        raise CheckpointError(
            f"{out} holds files this router did not write: {stray[:5]}; load_router would "
            "refuse the checkpoint. Save into an empty directory or remove them"
        )
    return out
