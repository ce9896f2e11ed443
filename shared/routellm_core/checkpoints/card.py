"""The model card: README.md beside the weights, with the YAML front matter the Hugging Face Hub
reads (library, license, tags, datasets, base model), then Markdown for people.

Example:
    >>> card_metadata("random", {"license": "apache-2.0"}, {"params": {}})
    {'library_name': 'routellm-lc', 'license': 'apache-2.0', 'tags': ['routellm', 'llm-routing', 'random']}
"""

from __future__ import annotations

import json
import re
from typing import Any

from routellm_core.checkpoints.format import CARD_NAME
from routellm_core.static_encoder import split_static_prefix

#: ``library_name`` in the model card's front matter.
LIBRARY_NAME = "routellm-lc"
#: The tags every model card carries; the router type is added to them.
CARD_TAGS = ("routellm", "llm-routing")
_DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Hub license ids (https://hf.co/docs/hub/repositories-licenses) that a license recorded for training
# data can name: "MIT (RouterBench)" is "mit", the words before the parentheses, lower-cased.
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
    "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-4.0", "odc-by", "odbl", "gpl-3.0",
    "lgpl-3.0", "agpl-3.0", "mpl-2.0", "unlicense",
})
#: ``license_name`` of a card whose training data is under several licenses (or some unknown):
#: the card's "Training data" table names each source's license.
MIXED_LICENSE_NAME = "training-data-licenses"
_HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def hub_license(text: object) -> str | None:
    """The Hugging Face Hub license id of a license recorded for training data, else ``None``.

    Example:
        >>> hub_license("MIT (RouterBench)"), hub_license("CC BY-NC 4.0 (AlpacaEval data)")
        ('mit', 'cc-by-nc-4.0')
        >>> hub_license("user data (license not recorded)") is None
        True
    """
    if not isinstance(text, str):
        return None
    key = re.sub(r"[\s_]+", "-", text.split("(", 1)[0].strip().lower())
    return key if key in HUB_LICENSES else None


def _strings(value: Any) -> list[str]:
    """``value`` as a list of its non-empty strings (one string is a list of one)."""
    items = [value] if isinstance(value, str) else value if isinstance(value, (list, tuple)) else []
    return [v for v in items if isinstance(v, str) and v.strip()]


def _card_license(card: dict[str, Any]) -> dict[str, str]:
    """``license`` (with ``license_name`` and ``license_link`` where it is ``other``): the card's
    own ``license`` when it gives one, else the one Hub license all of its training data is under;
    ``other`` naming the card's table when the data is under several (or some unknown); nothing
    when no license of its data is known."""
    own = _strings(card.get("license"))
    if own:
        return {"license": hub_license(own[0]) or own[0],
                **{k: _strings(card.get(k))[0] for k in ("license_name", "license_link") if _strings(card.get(k))}}
    data = card.get("data")
    ids = {hub_license(d.get("license")) for d in data if isinstance(d, dict)} if isinstance(data, list) else set()
    if not ids or ids == {None}:
        return {}
    if len(ids) == 1:
        return {"license": str(ids.pop())}
    return {"license": "other", "license_name": MIXED_LICENSE_NAME, "license_link": CARD_NAME}


def _base_model(router_type: str, config: dict[str, Any]) -> str | None:
    """The Hub model the router builds on: its query encoder (a ``static:`` encoder's source
    model) or, for a classifier router, the model it fine-tuned; ``None`` when that is not a Hub id."""
    params = config.get("params") or {}
    if config.get("encoder_probe") is not None:  # the router encodes queries
        name = params.get("encoder") or _DEFAULT_ENCODER_ID
    elif "base_model" in params:
        name = params.get("base_model") or (_DEFAULT_ENCODER_ID if router_type == "bert" else None)
    else:
        return None
    if not isinstance(name, str):
        return None
    name = split_static_prefix(name)[1]
    return name if _HUB_REPO_ID.match(name) else None


def card_metadata(router_type: str, card: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The model card's YAML front matter, as the Hugging Face Hub reads it: ``library_name``,
    ``license`` (see :func:`hub_license`; the card's own ``license``, ``license_name`` and
    ``license_link`` win), ``tags`` (:data:`CARD_TAGS`, the router type, the card's ``tags``),
    ``datasets`` (the card's ``datasets`` and each data entry's ``dataset``: Hub dataset ids;
    left out when none is known) and ``base_model`` (the query encoder, when it is a Hub model).

    Example:
        >>> config = {"params": {"encoder": None}, "encoder_probe": {}}
        >>> card = {"data": [{"spec": "a.csv", "license": "MIT (RouterBench)"}], "tags": ["demo"]}
        >>> card_metadata("sw_ranking", card, config)  # doctest: +NORMALIZE_WHITESPACE
        {'library_name': 'routellm-lc', 'license': 'mit', 'tags': ['routellm', 'llm-routing', 'sw_ranking', 'demo'],
         'base_model': 'sentence-transformers/all-MiniLM-L6-v2'}
    """
    meta: dict[str, Any] = {"library_name": LIBRARY_NAME, **_card_license(card)}
    meta["tags"] = list(dict.fromkeys([*CARD_TAGS, router_type, *_strings(card.get("tags"))]))
    data = card.get("data")
    entries: list[Any] = data if isinstance(data, list) else []
    datasets = [*_strings(card.get("datasets")),
                *(name for d in entries if isinstance(d, dict) for name in _strings(d.get("dataset")))]
    if datasets:
        meta["datasets"] = list(dict.fromkeys(datasets))
    base = _base_model(router_type, config)
    if base:
        meta["base_model"] = base
    return meta


def render_card(router_type: str, card: dict[str, Any], config: dict[str, Any]) -> str:
    """The model card (written beside the weights as README.md): YAML front matter for the
    Hugging Face Hub (:func:`card_metadata`) between ``---`` lines, then Markdown for people.

    Loading never reads the card, so checkpoints whose card has no front matter (saved before
    it was written, such as the embedded defaults) load as before.
    """
    import yaml

    front = yaml.safe_dump(card_metadata(router_type, card, config), sort_keys=False, allow_unicode=True,
                           default_flow_style=False)
    lines = ["---", front.rstrip("\n"), "---", "", f"# RouteLLM router: `{router_type}`", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    params = config["params"]
    pool = (
        (config.get("state") or {}).get("models")
        if "strong_model" not in params
        else None
    )
    lines += [
        f"- models routed among: {', '.join(f'`{m}`' for m in pool)}"
        if pool
        else f"- strong model: `{params.get('strong_model')}`; weak model: `{params.get('weak_model')}`",
        f"- encoder: `{params.get('encoder') or 'sentence-transformers/all-MiniLM-L6-v2'}`",
    ]
    if card.get("command"):
        lines += [f"- produced by: `{card['command']}`"]
    if card.get("data"):
        # binary routers count battles; N-way routers count the queries of a score matrix
        unit = "battles" if any("battles" in d for d in card["data"]) else "queries"
        lines += [
            "",
            "## Training data",
            "",
            f"| source | {unit} | license |",
            "|---|---|---|",
        ]
        for d in card["data"]:
            lines.append(
                f"| {d.get('spec', d.get('source'))} | {d.get(unit, '')} | {d.get('license', '')} |"
            )
    if card.get("decontamination"):
        lines += ["", "## Decontamination", "", str(card["decontamination"])]
    for key, title in (("metrics", "Evaluation"), ("validation", "Validation")):
        if card.get(key):
            lines += ["", f"## {title}", "", "```json", json.dumps(card[key], indent=1), "```"]
    if config.get("calibration"):
        cal = config["calibration"]
        lines += [
            "",
            f"Calibrated on {cal.get('n_prompts')} prompts from {cal.get('source')}.",
        ]
    return "\n".join(lines) + "\n"

