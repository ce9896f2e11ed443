"""Where ``routellm score | calibrate | eval`` score prompts: in this process, or on Ray Data actors.

Example:
    >>> import argparse
    >>> from routellm_core.cli.engine import add_engine_options
    >>> p = argparse.ArgumentParser()
    >>> add_engine_options(p)
    >>> p.parse_args(["--engine", "ray"]).num_workers
    2
"""

from __future__ import annotations

import argparse
from typing import Any

from routellm_core.cli.common import cache_dir

__all__ = ["add_engine_options", "engine_options", "score_many"]


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine``, ``--num-workers``, ``--ray-address`` and ``--batch-size``."""
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="score in this process (local) or on Ray Data actors (ray)")
    p.add_argument("--num-workers", type=int, default=2, help="Ray actors (default 2)")
    p.add_argument("--ray-address", help="Ray cluster to join (default: a local Ray)")
    p.add_argument("--batch-size", type=int, default=256, help="prompts per Ray batch")


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the CLI passes to :func:`routellm_core.batch.score_prompts` for the chosen engine."""
    return {
        "engine": args.engine, "num_workers": args.num_workers, "ray_address": args.ray_address,
        "revision": getattr(args, "revision", None), "encoder": getattr(args, "encoder", None),
        "cache_dir": None if args.no_cache else cache_dir(), "batch_size": args.batch_size,
        "show_progress": not args.quiet,
    }


def score_many(args: argparse.Namespace, prompts: Any, router: Any = None, **kw: Any) -> Any:
    """Win rates of ``prompts``: here with a progress bar (local), or on Ray actors."""
    import pandas as pd

    if args.engine == "local" and router is not None:
        from routellm_core.data.prompts import prompt_texts
        from routellm_core.progress import win_rates_in_chunks

        texts = prompt_texts(prompts)
        rates = win_rates_in_chunks(router, texts, show_progress=not args.quiet, **kw)
        return pd.DataFrame({"prompt": texts, "win_rate": rates})
    from routellm_core.offline_scoring import score_prompts

    return score_prompts(prompts, args.router, **engine_options(args), **kw)
