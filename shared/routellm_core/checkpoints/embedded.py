"""The checkpoints shipped inside the package, loaded offline by name.

Example:
    >>> sorted(p.name for p in DEFAULT_DIR.iterdir())
    ['README.md', 'config.json', 'model.safetensors']
    >>> _embedded_dir("default-fast") == FAST_DEFAULT_DIR
    True
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).parent.parent  # routellm_core/
#: The embedded default binary router (``"default"``).
DEFAULT_DIR = _PACKAGE_DIR / "default_router"
#: The embedded default's recipe on the fast static encoder (``"default-fast"``).
FAST_DEFAULT_DIR = _PACKAGE_DIR / "default_router_fast"
#: The embedded default N-way router (``load_nway_router("default")``).
NWAY_DEFAULT_DIR = _PACKAGE_DIR / "nway" / "default"
EMBEDDED = ("default", "default-fast")


def _embedded_dir(name: str) -> Path:
    """The directory of the embedded binary router ``name`` (one of :data:`EMBEDDED`)."""
    return DEFAULT_DIR if name == "default" else FAST_DEFAULT_DIR  # read at call time: tests patch them
