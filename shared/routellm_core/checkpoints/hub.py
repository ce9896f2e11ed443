"""Fetching a checkpoint from the Hugging Face Hub: its config first, then exactly the files its
manifest lists, at the same commit (``huggingface_hub``, imported when a fetch happens).

Example:
    >>> _repo_root(Path("hub/models--org--name/snapshots/0123abcd")).name
    'models--org--name'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from routellm_core.checkpoints.format import CONFIG_NAME, _check_name, _read_config
from routellm_core.errors import CheckpointError

#: The prefix of a Hub repo id that :func:`~routellm_core.checkpoints.load_router` fetches.
HUB_PREFIX = "hf://"


def _repo_root(snapshot: Path) -> Path:
    """The Hub cache's ``models--org--name`` folder of a snapshot; its files link into ``blobs/`` there."""
    return snapshot.parent.parent if snapshot.parent.name == "snapshots" else snapshot


def _download(repo_id: str, revision: str | None) -> Path:
    """Fetch the config at ``revision``, then exactly the files its manifest lists, same commit."""
    from huggingface_hub import snapshot_download

    try:
        first = Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG_NAME])
        )
        config = _read_config(first, _repo_root(first).resolve())
        names = [_check_name(first, name) for name in config["files"]]
        # the snapshot folder is named after the commit: the second call cannot drift from it
        commit = first.name if re.fullmatch(r"[0-9a-f]{40}", first.name) else revision
        return Path(
            snapshot_download(
                repo_id, revision=commit, allow_patterns=[CONFIG_NAME, *names]
            )
        )
    except CheckpointError:
        raise
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        hint = (
            " (HF_HUB_OFFLINE is set and it is not in the local cache)"
            if offline
            else ""
        )
        raise CheckpointError(
            f"could not fetch router {repo_id!r} (revision {revision or 'main'}) from the Hugging Face Hub{hint}: {exc}"
        ) from exc
