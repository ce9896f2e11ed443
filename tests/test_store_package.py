"""The traffic store's own package, and the helpers moved below the modules that use them: the new
places work on their own, and the old import paths give the same objects."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

MOVED = {
    # new place -> the old places that re-export it
    ("routellm_core.store", "TrafficStore"): ["routellm_core.learning.store", "routellm_core.learning"],
    ("routellm_core.store", "open_store"): ["routellm_core.learning.store", "routellm_core.learning"],
    ("routellm_core.store", "BackgroundWriter"): ["routellm_core.learning.store", "routellm_core.learning"],
    ("routellm_core.store", "RouterVersion"): ["routellm_core.learning.store", "routellm_core.learning"],
    ("routellm_core.store", "battle_key"): ["routellm_core.learning.store"],
    ("routellm_core.store", "SCHEMA_VERSION"): ["routellm_core.learning.store"],
    ("routellm_core.store", "PAGE_KEYS"): ["routellm_core.learning.store"],
    ("routellm_core.store", "EXIT_TIMEOUT"): ["routellm_core.learning.store"],
    ("routellm_core.battles", "make_battles"): ["routellm_core.data.schema", "routellm_core.data"],
    ("routellm_core.battles", "validate_battles"): ["routellm_core.data.schema", "routellm_core.data"],
    ("routellm_core.battles", "BATTLE_COLUMNS"): ["routellm_core.data.schema", "routellm_core.data"],
    ("routellm_core.data_dir", "DATA_DIR_ENV"): ["routellm_core.data.specs"],
    ("routellm_core.data_dir", "default_data_dir"): ["routellm_core.data.specs", "routellm_core.data"],
    ("routellm_core.training.holdout", "holdout_mask"): ["routellm_core.learning.promote"],
    ("routellm_core.training.holdout", "split_holdout"): ["routellm_core.learning.promote"],
}


@pytest.mark.parametrize(("new", "name"), sorted(MOVED))
def test_the_old_import_paths_give_the_moved_object(new, name):
    moved = getattr(importlib.import_module(new), name)
    for old in MOVED[(new, name)]:
        assert getattr(importlib.import_module(old), name) is moved, f"{old}.{name}"


def test_the_store_imports_nothing_above_it_even_inside_functions():
    import routellm_core.store

    found = set()
    for path in Path(routellm_core.store.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    core = {m.split(".")[1] for m in found if m.startswith("routellm_core.")}
    assert core <= {"battles", "errors", "store"}, sorted(core)


def test_a_store_read_through_a_data_spec_gives_its_training_battles(tmp_path):
    from routellm_core.data.specs import load_battles
    from routellm_core.store import open_store

    path = tmp_path / "traffic.db"
    store = open_store(path)
    assert store.add_battle(query="2+2?", model_a="big", model_b="small", winner="a", source="doc")
    battles = load_battles(f"store:{path}")
    assert battles[["query", "model_a", "model_b", "winner"]].values.tolist() == [["2+2?", "big", "small", "a"]]


def test_the_store_is_one_class_with_its_paged_reads_claims_and_router_versions(tmp_path):
    from routellm_core.store import TrafficStore

    store = TrafficStore(tmp_path / "t.db")
    key = "k" * 64
    assert store.claim(key, "labeller-1", ttl=60) and not store.claim(key, "labeller-2", ttl=60)
    assert store.existing_keys([key]) == set() and list(store.iter_calls()) == []
    assert store.publish_router("/srv/routers/v1", sha256="0" * 64).version == 1
    assert store.live_router().location == "/srv/routers/v1"
