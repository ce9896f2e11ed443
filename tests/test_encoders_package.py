"""The encoders package: one direction of imports inside it, and the old module paths still work."""

from __future__ import annotations

from tests.test_module_graph import import_graph

#: Each module of the package and the package modules it may import (late imports counted).
LAYERS = {
    "routellm_core.encoders.paths": set(),
    "routellm_core.encoders.text": set(),
    "routellm_core.encoders.cache": set(),
    "routellm_core.encoders.static": {"routellm_core.encoders.paths"},
    "routellm_core.encoders.onnx_backend": {"routellm_core.encoders.paths"},
    "routellm_core.encoders.query": {
        "routellm_core.encoders.cache", "routellm_core.encoders.onnx_backend", "routellm_core.encoders.paths",
        "routellm_core.encoders.static", "routellm_core.encoders.text",
    },
}


def test_the_encoders_package_imports_one_way_only():
    graph = import_graph(late=True)
    inside = {m for m in graph if m.startswith("routellm_core.encoders.")}
    assert inside == set(LAYERS)
    for module, allowed in LAYERS.items():
        got = {m for m in graph[module] if m.startswith("routellm_core.encoders.")}
        assert got <= allowed, f"{module} imports {sorted(got - allowed)}"
        # never back up through the package or the old shims
        assert not graph[module] & {"routellm_core.static_encoder", "routellm_core.encoder_paths"}
    shims = ("routellm_core.static_encoder", "routellm_core.encoder_paths")
    assert not any(s in graph[m] for m in graph if m.startswith("routellm_core.encoders") for s in shims)


def test_the_old_module_paths_give_the_same_objects():
    from routellm_core import encoder_paths, encoders, static_encoder
    from routellm_core.encoders import paths, static, text

    assert static_encoder.fix_signs is static.fix_signs
    assert static_encoder.cache_root is paths.cache_root is encoders.cache_root
    assert static_encoder.FAST_ENCODER == encoders.FAST_ENCODER == "static:sentence-transformers/all-MiniLM-L6-v2"
    assert encoder_paths._default_model_path is encoders._default_model_path is paths._default_model_path
    assert encoders.validate_texts is text.validate_texts and encoders._key is text._key
    for name in ("QueryEncoder", "get_encoder", "DEFAULT_ENCODER", "MAX_CHARS", "scoring_text", "_DiskCache"):
        assert hasattr(encoders, name)
