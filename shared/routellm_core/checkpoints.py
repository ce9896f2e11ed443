"""Save and load routers: safetensors weights + JSON config + a model card. Never pickle.

A checkpoint is a directory::

    config.json        router type, constructor parameters, learned JSON state, calibration
                       table, model card data, and the sha256 of every other file
    model.safetensors  learned arrays (absent for routers with none, e.g. random)
    README.md          the model card, for people

Example:
    >>> from routellm_core.checkpoints import load_router
    >>> router = load_router("default")            # embedded in the package, offline
    >>> router.router_type
    'sw_ranking'

``load_router`` also takes a local directory or a Hugging Face Hub repo id
(``load_router("org/name", revision="main")``), fetched with ``huggingface_hub``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from routellm_core.encoders import QueryEncoder
from routellm_core.routers import Router, get_router_class

FORMAT = "routellm-checkpoint"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
DEFAULT_DIR = Path(__file__).parent / "default_router"


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, corrupt or not a router checkpoint."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_router(router: Router, path: str | os.PathLike[str], *, card: dict[str, Any] | None = None) -> Path:
    """Write ``router`` to the directory ``path`` (created if needed); returns the path.

    ``card`` (data sources, licenses, counts, metrics, command) goes into the config and the
    README model card; it is also kept on the router as ``router.card_``.
    """
    from safetensors.numpy import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if card is not None:
        router.card_ = dict(card)
    arrays = {k: np.ascontiguousarray(v) for k, v in router._state().items()}
    files: dict[str, str] = {}
    if arrays:
        save_file(arrays, str(out / WEIGHTS_NAME))
        files[WEIGHTS_NAME] = _sha256(out / WEIGHTS_NAME)
    elif (out / WEIGHTS_NAME).exists():
        (out / WEIGHTS_NAME).unlink()
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "router_type": router.router_type,
        "params": router.get_params(),
        "state": router._extra_state(),
        "calibration": router.calibration_.to_dict() if router.calibration_ else None,
        "card": router.card_,
        "files": files,
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    (out / CARD_NAME).write_text(render_card(router.router_type, router.card_, config))
    return out


def render_card(router_type: str, card: dict[str, Any], config: dict[str, Any]) -> str:
    """The model card as Markdown (written beside the weights as README.md)."""
    lines = [f"# RouteLLM router: `{router_type}`", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    params = config["params"]
    lines += [
        f"- strong model: `{params.get('strong_model')}`; weak model: `{params.get('weak_model')}`",
        f"- encoder: `{params.get('encoder') or 'sentence-transformers/all-MiniLM-L6-v2'}`",
    ]
    if card.get("command"):
        lines += [f"- produced by: `{card['command']}`"]
    if card.get("data"):
        lines += ["", "## Training data", "", "| source | battles | license |", "|---|---|---|"]
        for d in card["data"]:
            lines.append(f"| {d.get('spec', d.get('source'))} | {d.get('battles', '')} | {d.get('license', '')} |")
    if card.get("decontamination"):
        lines += ["", "## Decontamination", "", str(card["decontamination"])]
    if card.get("metrics"):
        lines += ["", "## Evaluation", "", "```json", json.dumps(card["metrics"], indent=1), "```"]
    if config.get("calibration"):
        cal = config["calibration"]
        lines += ["", f"Calibrated on {cal.get('n_prompts')} prompts from {cal.get('source')}."]
    return "\n".join(lines) + "\n"


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a router checkpoint: {CONFIG_NAME} is missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} config (format={config.get('format') if isinstance(config, dict) else None!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format_version {config.get('format_version')!r}; this library reads {FORMAT_VERSION}")
    for key in ("router_type", "params", "state", "files"):
        if key not in config:
            raise CheckpointError(f"{path} lacks the key {key!r}")
    return config


def load_checkpoint_dir(
    path: str | os.PathLike[str], *, encoder: QueryEncoder | str | None = None
) -> Router:
    """Load a router from a local checkpoint directory, verifying every file's sha256."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    config = _read_config(directory)
    try:
        cls = get_router_class(config["router_type"])
    except ValueError as exc:
        raise CheckpointError(f"{directory}: {exc}") from exc
    arrays: dict[str, np.ndarray] = {}
    for name, digest in config["files"].items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise CheckpointError(f"{directory}: file entry {name!r} points outside the checkpoint")
        file = directory / name
        if not file.is_file():
            raise CheckpointError(f"{directory}: {name} is missing (the config lists it)")
        if _sha256(file) != digest:
            raise CheckpointError(f"{directory}: {name} does not match the sha256 in {CONFIG_NAME}; it is corrupt or was modified")
        if name.endswith(".safetensors"):
            try:
                arrays.update(load_file(str(file)))
            except (SafetensorError, OSError, ValueError) as exc:
                raise CheckpointError(f"{directory}: {name} is not a readable safetensors file: {exc}") from exc
    params = dict(config["params"])
    if encoder is not None:
        params["encoder"] = encoder
    try:
        router = cls(**params)
        router._set_state(arrays, config["state"])
    except (TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{directory}: the checkpoint does not fit a {cls.router_type} router: {exc!r}") from exc
    if config.get("calibration"):
        from routellm_core.calibration import CalibrationTable

        try:
            router.calibration_ = CalibrationTable.from_dict(config["calibration"])
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    router.card_ = dict(config.get("card") or {})
    return router


def load_router(
    name_or_path: str | os.PathLike[str] = "default",
    *,
    revision: str | None = None,
    encoder: QueryEncoder | str | None = None,
    **router_params: Any,
) -> Router:
    """Load a router: ``"default"`` (embedded), ``"random"``, a local directory, or a Hub repo id.

    Args:
        name_or_path: ``"default"``; ``"random"`` (the untrained baseline); a checkpoint
            directory; or ``"org/name"`` on the Hugging Face Hub.
        revision: Hub branch, tag or commit to pin.
        encoder: override the query encoder (an instance shares its cache across routers).
        router_params: for ``"random"`` only, e.g. ``seed=0``.
    """
    target = str(name_or_path)
    if target == "random":
        from routellm_core.routers import RandomRouter

        return RandomRouter(**router_params)
    if router_params:
        raise TypeError(f"unexpected parameters for a checkpoint: {sorted(router_params)}")
    if target == "default":
        return load_checkpoint_dir(DEFAULT_DIR, encoder=encoder)
    local = Path(target).expanduser()
    if local.exists():
        return load_checkpoint_dir(local, encoder=encoder)
    if target.count("/") != 1 or target.startswith((".", "/")):
        raise CheckpointError(
            f"{target!r} is neither 'default', 'random', an existing checkpoint directory, nor a "
            "Hugging Face Hub repo id of the form 'org/name'"
        )
    return load_checkpoint_dir(_download(target, revision), encoder=encoder)


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=[CONFIG_NAME, "*.safetensors", CARD_NAME],
            )
        )
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        hint = " (HF_HUB_OFFLINE is set and it is not in the local cache)" if offline else ""
        raise CheckpointError(
            f"could not fetch router {repo_id!r} (revision {revision or 'main'}) from the Hugging Face Hub{hint}: {exc}"
        ) from exc
