"""Save and load routers: safetensors weights + JSON config + a model card. Never pickle.

A checkpoint is a directory::

    config.json        router type, constructor parameters, learned JSON state, calibration
                       table, model card data, and the sha256 of every other file (``files``)
    model.safetensors  learned arrays (absent for routers with none, e.g. random)
    README.md          the model card, for people, opening with the YAML front matter the
                       Hugging Face Hub reads (library, license, tags, datasets, base model)
    ...                any further files a router writes (tokenizer files, more safetensors,
                       sub-folders), each listed with its sha256 in ``files``

Loading is strict, so a checkpoint from an untrusted place can be loaded safely:

- every file in the directory except ``config.json`` is listed in ``files`` and matches its
  sha256; an unlisted, missing or modified file is refused;
- a pickle is refused: weight files of pickle-based formats (``.bin``, ``.pt``, ``.pkl``, ...)
  and files whose first bytes are a pickle or a ``torch.save`` zip, whatever their name;
  nothing in a checkpoint is ever unpickled;
- nothing may point outside the directory: a ``files`` entry that is absolute or holds
  ``..``, a symlink whose target lies outside, or a path-like parameter (``/...``, ``~``,
  ``..``, ``C:\\``) is refused;
- a weight tensor holding NaN or an infinity is refused, naming it.

A load reads one directory whole: on POSIX every file is read through one open descriptor
of the directory, so a ``routellm promote`` that swaps the path meanwhile gives the old
router or the new one, never a mix and never a checksum error (a load the swap disturbed is
done again, up to 3 times).

Example:
    >>> from routellm_core.checkpoints import load_router
    >>> router = load_router("default")            # embedded in the package, offline
    >>> router.router_type
    'sw_ranking'

``load_router`` also takes a local directory or a Hugging Face Hub repo id
(``load_router("org/name", revision="v1")`` or ``load_router("hf://org/name")``), fetched with
``huggingface_hub``.

Routers that carry more than arrays and JSON state (say, a tokenizer) may define two hooks:
``router._save_files(directory) -> list[str]`` writes the extra files and returns their paths
relative to ``directory`` (they join the manifest), and ``router._load_files(directory)`` reads
them back after every file has been verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickletools
import re
import stat
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

import numpy as np

from routellm_core.encoder_probe import check_probe, encoder_probe
from routellm_core.encoders import QueryEncoder
from routellm_core.errors import CheckpointError, RouteLLMWarning
from routellm_core.estimator import EstimatorParams, check_is_fitted
from routellm_core.nway import NWAY_ROUTERS, NWayRouter
from routellm_core.routers import Router, get_router_class
from routellm_core.static_encoder import split_static_prefix

FORMAT = "routellm-checkpoint"
FORMAT_VERSION = 2
# A router that strips a query template is saved as version 3: a reader of 1-2 would ignore the
# template and score other text than the router was trained on, so it must refuse the file.
TEMPLATE_FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 16 << 20  # the embedded defaults' configs are about 25 KB
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
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
DEFAULT_DIR = Path(__file__).parent / "default_router"
#: The embedded default's recipe on the fast static encoder (``"default-fast"``).
FAST_DEFAULT_DIR = Path(__file__).parent / "default_router_fast"
EMBEDDED = ("default", "default-fast")


def _embedded_dir(name: str) -> Path:
    return DEFAULT_DIR if name == "default" else FAST_DEFAULT_DIR  # read at call time: tests patch them
HUB_PREFIX = "hf://"
NWAY_DEFAULT_DIR = Path(__file__).parent / "nway" / "default"

PICKLE_SUFFIXES = frozenset(
    {
        ".bin",
        ".pt",
        ".pth",
        ".pkl",
        ".pickle",
        ".ckpt",
        ".joblib",
        ".dill",
        ".npy",
        ".npz",
        ".h5",
        ".msgpack",
    }
)
# Code that a library would import or run from a checkpoint folder (transformers imports the
# .py files an ``auto_map`` names, after asking on stdin): refused whatever the manifest says.
CODE_SUFFIXES = frozenset(
    {".py", ".pyc", ".pyo", ".pyd", ".pyx", ".so", ".dll", ".dylib", ".sh", ".exe", ".ipynb"}
)
# Keys by which Hugging Face configs ask for code from the checkpoint (or the Hub) to be run.
REMOTE_CODE_KEYS = frozenset({"auto_map", "trust_remote_code", "custom_pipelines"})
#: The marker file ``routellm promote`` (:func:`~routellm_core.learning.promote.replace_checkpoint`)
#: writes in the directories it makes, so that it deletes only those; never read here.
PROMOTE_MARKER = ".routellm-promote"
# Files a checkpoint directory may hold besides the checkpoint, never read here: a Hub
# snapshot's git metadata, the marker of a directory that promote made.
_INERT_FILES = (".gitattributes", PROMOTE_MARKER)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+\-]+(/[A-Za-z0-9_.+\-]+)*$")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256_of(f)


def _sha256_of(f: IO[bytes]) -> str:
    f.seek(0)
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _listed_files(directory: Path) -> list[str]:
    """Every file and symlink under ``directory`` except the config, as POSIX relative paths."""
    out = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        base = Path(root)
        # a symlinked folder is not descended into: report it as an entry so it is checked
        entries = files + [d for d in dirs if (base / d).is_symlink()]
        for name in entries:
            rel = (base / name).relative_to(directory).as_posix()
            if rel not in (CONFIG_NAME, *_INERT_FILES):
                out.append(rel)
    return sorted(out)


# Reading one consistent directory. ``routellm promote --to`` swaps a live checkpoint directory
# while other processes load it; a loader that read config.json from one directory and the
# weights from the other would refuse the mix (the sha256 differ), or worse, load it.
_LOAD_ATTEMPTS = 3
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
# read relative to a directory descriptor where the system can (POSIX), else by path
_BY_FD = bool(_O_DIRECTORY) and os.open in os.supports_dir_fd and os.scandir in os.supports_fd
_MAX_DEPTH = 32
_MAX_HELD = 256  # files held open from the start of a load (a checkpoint has a handful)
_T = TypeVar("_T")


class _Pinned:
    """A checkpoint directory held open for the length of one load.

    Where the system allows (POSIX), the directory is opened once and every file is read
    relative to that descriptor (``relative``), so a rename or exchange of its path during the
    load cannot mix the files of two directories. A directory holding a symlink (a Hub
    snapshot's files link into its ``blobs/``) is read by path, as the symlink rules need; so
    are the files a router's ``_load_files`` hook reads (``by_path`` is set then). Either way
    the directory's identity tells whether its path still names it (:meth:`moved`).

    Its files are opened at once, too, and held: a promote deletes a directory two swaps after
    it left the path, and a slow load of it still reads every file whole.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fd: int | None = None
        self.relative = False
        self.entries: list[str] = []
        self.held: dict[str, int] = {}
        self.by_path = False
        if not _BY_FD:
            st = os.stat(directory)
            self.identity = (st.st_dev, st.st_ino)
            return
        # held open to the end: the directory's inode cannot be reused while it is compared
        self.fd = os.open(directory, _O_FLAGS | _O_DIRECTORY)
        try:
            st = os.fstat(self.fd)
            self.identity = (st.st_dev, st.st_ino)
            entries = _scan_fd(self.fd, directory)
            self.relative = entries is not None
            self.entries = entries or []
            if self.relative and len(self.entries) < _MAX_HELD:
                for name in [CONFIG_NAME, *self.entries]:
                    self._hold(name)
        except BaseException:
            self.close()
            raise

    def _hold(self, name: str) -> None:
        st = self.stat(name)
        if st is None or not stat.S_ISREG(st.st_mode):
            return  # missing or not a file (never opened: a FIFO or a device): the checks say so
        try:
            fd = os.open(name, _O_FLAGS | _O_NOFOLLOW, dir_fd=self.fd)
        except OSError:
            return
        if stat.S_ISREG(os.fstat(fd).st_mode):
            self.held[name] = fd
        else:
            os.close(fd)

    def close(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> _Pinned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def moved(self) -> bool:
        """Whether the path no longer names the directory that was opened."""
        try:
            st = os.stat(self.directory)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self.identity

    def stat(self, name: str) -> os.stat_result | None:
        """``lstat`` of ``name`` inside the directory (``relative`` only); ``None`` if missing."""
        if name in self.held:
            return os.fstat(self.held[name])
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def open(self, name: str) -> IO[bytes]:
        """``name`` opened for reading, at its start: inside the held directory, or by path."""
        if not self.relative:
            return open(self.directory / name, "rb")
        if name in self.held:
            f = os.fdopen(os.dup(self.held[name]), "rb")
            f.seek(0)
            return f
        return os.fdopen(os.open(name, _O_FLAGS | _O_NOFOLLOW, dir_fd=self.fd), "rb")


def _scan_fd(fd: int, directory: Path, prefix: str = "", depth: int = 0) -> list[str] | None:
    """What :func:`_listed_files` lists, read through the directory descriptor ``fd``;
    ``None`` when the tree holds a symlink (to be checked by path)."""
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"{directory}: folders nest more than {_MAX_DEPTH} deep")
    with os.scandir(fd) as it:
        entries = list(it)
    out: list[str] = []
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_symlink():
            return None
        if entry.is_dir(follow_symlinks=False):
            sub = os.open(entry.name, _O_FLAGS | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=fd)
            try:
                found = _scan_fd(sub, directory, rel + "/", depth + 1)
            finally:
                os.close(sub)
            if found is None:
                return None
            out.extend(found)
        elif rel not in (CONFIG_NAME, *_INERT_FILES):
            out.append(rel)
    return sorted(out)


def _consistently(directory: Path, read: Callable[[_Pinned], _T]) -> _T:
    """``read(pinned)`` of ``directory``, from one consistent directory: when the path came to
    name another directory while a read failed (``routellm promote`` swapped it in), or
    while files were read by path, the read is done again (up to 3 times in all)."""
    for attempt in range(1, _LOAD_ATTEMPTS + 1):
        try:
            pinned = _Pinned(directory)
        except (FileNotFoundError, NotADirectoryError):
            if attempt == _LOAD_ATTEMPTS:
                raise CheckpointError(f"checkpoint directory {directory} does not exist") from None
            time.sleep(0.01 * attempt)  # between the two renames of a swap where renames cannot exchange
            continue
        with pinned:
            try:
                result = read(pinned)
            except (CheckpointError, OSError):
                if attempt == _LOAD_ATTEMPTS or not pinned.moved():
                    raise
                continue
            if not (pinned.by_path and pinned.moved()):
                return result
    raise CheckpointError(
        f"{directory} was replaced by another directory during each of {_LOAD_ATTEMPTS} loads; "
        "load it again once it stops changing"
    )


def save_router(
    router: Router | NWayRouter, path: str | os.PathLike[str], *, card: dict[str, Any] | None = None
) -> Path:
    """Write ``router`` to the directory ``path`` (created if needed); returns the path.

    ``card`` (data sources, licenses, counts, metrics, command) goes into the config and the
    README model card; it is also kept on the router as ``router.card_``. The sha256 of the
    weights, the card and any file the router's ``_save_files`` hook writes go into the config.

    Example:
        >>> import tempfile
        >>> from routellm_core.routers import RandomRouter
        >>> out = save_router(RandomRouter(seed=1), tempfile.mkdtemp())
        >>> sorted(json.loads((out / "config.json").read_text())["files"])
        ['README.md']
    """
    from safetensors.numpy import save_file

    if not isinstance(router, EstimatorParams):
        raise TypeError(f"save_router() needs a router, got {type(router).__name__}")
    check_is_fitted(router)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if card is not None:
        router.card_ = dict(card)
    card_data = dict(router.card_ or {})
    arrays = {k: np.ascontiguousarray(v) for k, v in router._state().items()}
    names: list[str] = []
    if arrays:
        save_file(arrays, str(out / WEIGHTS_NAME))
        names.append(WEIGHTS_NAME)
    elif (out / WEIGHTS_NAME).exists():
        (out / WEIGHTS_NAME).unlink()
    save_files = getattr(router, "_save_files", None)
    if save_files is not None:
        for name in save_files(out):
            names.append(_check_name(out, PurePosixPath(name).as_posix()))
    config = {
        "format": FORMAT,
        "format_version": TEMPLATE_FORMAT_VERSION if router.query_template_ else FORMAT_VERSION,
        "router_type": router.router_type,
        "params": router.get_params(),
        "state": router._extra_state(),
        "calibration": router.calibration_.to_dict() if router.calibration_ else None,
        "encoder_probe": encoder_probe(router.encoder_) if router.uses_encoder else None,
        "query_template": router.query_template_.to_lines() if router.query_template_ else None,
        "card": card_data,
        "files": {},
    }
    (out / CARD_NAME).write_text(render_card(router.router_type, card_data, config))
    names.append(CARD_NAME)
    files = {name: _sha256(out / name) for name in sorted(set(names))}
    config["files"] = files
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    stray = [n for n in _listed_files(out) if n not in files]
    if stray:  # it would be refused at load: say so now, while the cause is known
        raise CheckpointError(
            f"{out} holds files this router did not write: {stray[:5]}; load_router would "
            "refuse the checkpoint. Save into an empty directory or remove them"
        )
    return out


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


def _read_config(directory: Path, root: Path | None = None, *, pinned: _Pinned | None = None) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    if pinned is not None and pinned.relative:
        st = pinned.stat(CONFIG_NAME)
        size = st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None
    else:
        if path.is_symlink() and not _inside(path.resolve(), root or directory.resolve()):
            raise CheckpointError(
                f"{path} is a symlink to {path.resolve()}, outside the checkpoint directory"
            )
        size = path.stat().st_size if path.is_file() else None
    if size is None:
        raise CheckpointError(
            f"{directory} is not a router checkpoint: {CONFIG_NAME} is missing"
        )
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"{path} is {size:,} bytes; a checkpoint config may hold at most {MAX_CONFIG_BYTES:,}"
        )
    if pinned is not None and pinned.relative:
        with pinned.open(CONFIG_NAME) as f:
            raw: str | bytes = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:  # it grew since the size was read
            raise CheckpointError(f"{path} is over {MAX_CONFIG_BYTES:,} bytes, the most a checkpoint config may hold")
    else:
        raw = path.read_text()
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path} is not valid JSON (or nests too deeply): {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a {FORMAT} config (format={config.get('format') if isinstance(config, dict) else None!r})"
        )
    if config.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has format_version {config.get('format_version')!r}; this library reads {list(READABLE_VERSIONS)}"
        )
    for key in ("router_type", "params", "state", "files"):
        if key not in config:
            raise CheckpointError(f"{path} lacks the key {key!r}")
    if not isinstance(config["files"], dict) or not isinstance(config["params"], dict):
        raise CheckpointError(f"{path}: 'files' and 'params' must be JSON objects")
    if not isinstance(config["state"], dict):
        raise CheckpointError(f"{path}: 'state' must be a JSON object")
    if not isinstance(config["router_type"], str):
        raise CheckpointError(f"{path}: 'router_type' must be a string, got {config['router_type']!r:.80}")
    if not all(isinstance(v, str) for v in config["files"].values()):
        raise CheckpointError(f"{path}: every 'files' entry must be a sha256 hex string")
    return config


def _router_class(router_type: str) -> Any:
    """The strong/weak or N-way router class registered under ``router_type``."""
    if router_type in NWAY_ROUTERS:
        return NWAY_ROUTERS[router_type]
    return get_router_class(router_type)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_name(directory: Path, name: Any) -> str:
    """``name`` if it is a plain relative path inside ``directory``, else CheckpointError."""
    if (
        not isinstance(name, str)
        or not _SAFE_NAME.match(name)
        or any(p in (".", "..") for p in name.split("/"))
    ):
        raise CheckpointError(
            f"{directory}: file entry {name!r} points outside the checkpoint or is not a plain relative "
            "path (letters, digits, '_.+-', '/' between parts; no '..', no absolute paths)"
        )
    return name


def _refuse_code(directory: Path, name: str, file: IO[bytes]) -> None:
    """Refuse files that hold code, and JSON files that ask for code to be run."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in CODE_SUFFIXES:
        raise CheckpointError(
            f"{directory}: {name} is refused: a checkpoint is data, and {suffix} files are code "
            "that a loader could import or run"
        )
    if suffix != ".json" or name == CONFIG_NAME:
        return
    file.seek(0)
    try:
        data = json.loads(file.read())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{directory}: {name} is not valid JSON: {exc}") from exc
    key = _remote_code_key(data)
    if key is not None:
        raise CheckpointError(
            f"{directory}: {name} is refused: its {key!r} asks for code to be loaded with the "
            "model (remote code); a checkpoint is data and is never loaded with code"
        )


def _remote_code_key(data: Any, depth: int = 0) -> str | None:
    if depth > 64:
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            if key in REMOTE_CODE_KEYS:
                return str(key)
            found = _remote_code_key(value, depth + 1)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = _remote_code_key(value, depth + 1)
            if found is not None:
                return found
    return None


def _is_text_pickle(file: IO[bytes]) -> bool:
    """Whether ``file`` parses as a whole as a protocol 0 or 1 pickle (opcodes up to a final
    STOP), which has no header to tell it by. Nothing is unpickled: the opcodes are only read."""
    file.seek(0)
    data = file.read()
    if not data.rstrip(b"\r\n").endswith(b"."):
        return False
    try:
        last = None
        for op, _arg, _pos in pickletools.genops(data):
            last = op
    except Exception:  # not a pickle: any other format fails on its first bytes
        return False
    return last is not None and last.name == "STOP"


def _refuse_pickle(directory: Path, name: str, file: IO[bytes]) -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{directory}: {name} is refused: {suffix} files are pickle-based (or not safetensors) "
            "and can run code when loaded; checkpoints hold weights only as .safetensors"
        )
    if suffix == ".safetensors":
        return  # its 8-byte header length can look like anything; it is parsed instead
    file.seek(0)
    head = file.read(4)
    if (
        len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    ) or head == b"PK\x03\x04" or _is_text_pickle(file):
        raise CheckpointError(
            f"{directory}: {name} is refused: its content is a pickle (or a torch.save zip archive), "
            "which can run code when loaded; checkpoints hold weights only as .safetensors"
        )


def verify_checkpoint(
    path: str | os.PathLike[str],
    *,
    trusted_root: str | os.PathLike[str] | None = None,
    overridden: Iterable[str] = (),
    _pinned: _Pinned | None = None,
) -> dict[str, Any]:
    """Check a checkpoint directory without loading anything from it; returns its config.

    Raises :class:`CheckpointError` unless every rule of this module's docstring holds.
    ``trusted_root`` widens where symlinks may point (a Hub cache's ``models--org--name``
    folder, whose snapshot files link into its ``blobs/``); ``overridden`` names parameters
    the caller replaces, which are then not checked. Every file is read from the one
    directory that ``path`` names when the check starts (see :func:`load_checkpoint_dir`).

    Example:
        >>> verify_checkpoint(DEFAULT_DIR)["router_type"]
        'sw_ranking'
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file; a checkpoint is a directory")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    if _pinned is None:
        return _consistently(directory, lambda pinned: verify_checkpoint(
            directory, trusted_root=trusted_root, overridden=overridden, _pinned=pinned))
    pinned = _pinned
    root = (
        Path(trusted_root).resolve()
        if trusted_root is not None
        else directory.resolve()
    )
    config = _read_config(directory, root, pinned=pinned)
    key = _remote_code_key(config)
    if key is not None:
        raise CheckpointError(
            f"{directory}: {CONFIG_NAME} is refused: its {key!r} asks for code to be loaded with "
            "the model (remote code); a checkpoint is data and is never loaded with code"
        )
    files: dict[str, Any] = config["files"]
    for name in files:
        _check_name(directory, name)
    present = pinned.entries if pinned.relative else _listed_files(directory)
    unlisted = [n for n in present if n not in files]
    # a v1 checkpoint did not list its model card, which is only ever read by people
    if config["format_version"] == 1:
        unlisted = [n for n in unlisted if n != CARD_NAME]
    for name in unlisted:
        st = pinned.stat(name) if pinned.relative else None
        if (st is not None and stat.S_ISREG(st.st_mode)) if pinned.relative else (directory / name).is_file():
            with pinned.open(name) as f:  # a pickle or code gets the more telling error
                _refuse_pickle(directory, name, f)
                _refuse_code(directory, name, f)
        raise CheckpointError(
            f"{directory}: {name} is not in the sha256 manifest ('files' in {CONFIG_NAME}); "
            "a checkpoint may hold only the files its config lists"
        )
    for name, digest in files.items():
        if pinned.relative:  # no symlink inside (else it is read by path): nothing to resolve
            st = pinned.stat(name)
            if st is None:
                raise CheckpointError(f"{directory}: {name} is missing (the config lists it)")
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(f"{directory}: {name} is not a regular file")
            f = pinned.open(name)
        else:
            file = directory / name
            if not file.exists() and not file.is_symlink():
                raise CheckpointError(
                    f"{directory}: {name} is missing (the config lists it)"
                )
            target = file.resolve()
            if not _inside(target, root):
                raise CheckpointError(
                    f"{directory}: {name} resolves to {target}, outside the checkpoint directory"
                )
            if not target.is_file():
                raise CheckpointError(f"{directory}: {name} is not a regular file")
            f = open(target, "rb")
        with f:
            _refuse_pickle(directory, name, f)
            _refuse_code(directory, name, f)
            matches = _sha256_of(f) == digest
        if not matches:
            raise CheckpointError(
                f"{directory}: {name} does not match the sha256 in {CONFIG_NAME}; it is corrupt or was modified"
            )
    skip = set(overridden)
    _check_params(
        directory, {k: v for k, v in config["params"].items() if k not in skip}
    )
    return config


def _check_params(directory: Path, params: Any, where: str = "params") -> None:
    """Refuse parameters that name a path outside the checkpoint (an encoder in /tmp, ``..``)."""
    if isinstance(params, dict):
        for key, value in params.items():
            _check_params(directory, value, f"{where}.{key}")
    elif isinstance(params, list):
        for i, value in enumerate(params):
            _check_params(directory, value, f"{where}[{i}]")
    elif isinstance(params, str):
        target = split_static_prefix(params)[1]
        parts = re.split(r"[\\/]", target)
        if (
            target.startswith(("/", "\\", "~"))
            or re.match(r"^[A-Za-z]:[\\/]", target)
            or ".." in parts
        ):
            raise CheckpointError(
                f"{directory}: {where} = {params!r} points outside the checkpoint directory; "
                "a checkpoint may name Hub ids or files inside itself only (to use a local "
                "encoder you trust, pass encoder=... to load_router)"
            )


def load_checkpoint_dir(
    path: str | os.PathLike[str],
    *,
    encoder: QueryEncoder | str | None = None,
    trusted_root: str | os.PathLike[str] | None = None,
) -> Router:
    """Load a router from a local checkpoint directory after :func:`verify_checkpoint`.

    ``encoder`` replaces the recorded encoder; before the router embeds anything it must
    reproduce the checkpoint's probe vectors (:class:`~routellm_core.encoder_probe.EncoderMismatchError`
    otherwise; checkpoints saved before probes were recorded are not checked).

    The router comes from one directory, whole: every file is read relative to the directory
    that ``path`` names when the load starts (POSIX), so a ``routellm promote`` that swaps
    ``path`` meanwhile cannot mix two checkpoints; a load that the swap disturbed (the old
    directory deleted under it; files that a router reads by path) is done again from the new
    one. A weight tensor holding NaN or an infinity is refused.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file; a checkpoint is a directory")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    return _consistently(directory, lambda pinned: _load_pinned(directory, pinned, encoder, trusted_root))


def _refuse_non_finite(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    """A float tensor with NaN or an infinity is corrupt weights (a diverged training run, a
    forged file): refused, naming it. An infinity can route every query one way with no
    error (a sigmoid of +inf is 1)."""
    for key, array in arrays.items():
        if array.dtype == np.float16:  # the exponent bits, all set: 3x faster than isfinite here
            exponent = np.uint16(0x7C00)
            bad = int(np.count_nonzero((array.view(np.uint16) & exponent) == exponent))
        elif array.dtype.kind in "fc":
            bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        else:
            continue
        if bad:
            raise CheckpointError(
                f"{directory}: {name} tensor {key!r} holds {bad:,} non-finite values (NaN or "
                f"+/-inf) of {array.size:,}; the weights are corrupt (a diverged training run or a "
                "modified file)"
            )


def _load_pinned(directory: Path, pinned: _Pinned, encoder: QueryEncoder | str | None,
                 trusted_root: str | os.PathLike[str] | None) -> Router:
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load as load_safetensors

    overridden = ("encoder",) if encoder is not None else ()
    config = verify_checkpoint(
        directory, trusted_root=trusted_root, overridden=overridden, _pinned=pinned
    )
    try:
        cls = _router_class(config["router_type"])
    except ValueError as exc:
        raise CheckpointError(f"{directory}: {exc}") from exc
    arrays: dict[str, np.ndarray] = {}
    for name in config["files"]:
        if not name.endswith(".safetensors"):
            continue
        try:
            if (
                "/" in name
            ):  # weights in a sub-folder are the router's own (``_load_files``)
                pinned.by_path = True
                with safe_open(str(directory / name), framework="numpy"):
                    pass
            else:  # hash the very bytes that are parsed: a file swapped after the check is refused
                with pinned.open(name) as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != config["files"][name]:
                    raise CheckpointError(
                        f"{directory}: {name} changed while it was loaded; it does not match the "
                        f"sha256 in {CONFIG_NAME}"
                    )
                loaded = load_safetensors(data)
                _refuse_non_finite(directory, name, loaded)
                arrays.update(loaded)
        except CheckpointError:
            raise
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{directory}: {name} is not a readable safetensors file: {exc}"
            ) from exc
    params = dict(config["params"])
    # saved before routers stripped query templates: it, and a clone refitted from it, read text whole
    params.setdefault("strip_templates", False)
    if encoder is None and not isinstance(params.get("encoder"), (str, type(None))):
        raise CheckpointError(
            f"{directory}: params.encoder must be an encoder name or null, got {params['encoder']!r:.80}"
        )
    prefix, target = split_static_prefix(params["encoder"]) if isinstance(params.get("encoder"), str) else ("", "")
    if encoder is not None:
        params["encoder"] = encoder
    elif target and (directory / target).is_dir():
        pinned.by_path = True  # the encoder loads from this path (on first use)
        params["encoder"] = prefix + str(directory.resolve() / target)  # an encoder shipped inside
    elif target and Path(target).exists():
        raise CheckpointError(
            f"{directory}: params.encoder = {params['encoder']!r} is not inside the checkpoint "
            f"but names {Path(target).resolve()} from the working directory; a "
            "checkpoint may name Hub ids or files inside itself only (to use a local encoder "
            "you trust, pass encoder=... to load_router)"
        )
    try:
        router = cls(**params)
        router._set_state(arrays, config["state"])
        _check_loaded(router)
    except CheckpointError:
        raise
    except Exception as exc:  # a malformed config may fail anywhere in the router: name it
        raise CheckpointError(
            f"{directory}: the checkpoint does not fit a {cls.router_type} router: {exc!r:.500}"
        ) from exc
    if config.get("calibration"):
        from routellm_core.calibration import CalibrationTable

        try:
            router.calibration_ = CalibrationTable.from_dict(config["calibration"])
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    if config.get("encoder_probe") is not None:
        try:
            router.encoder_probe_ = check_probe(config["encoder_probe"])
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    if config.get("query_template") is not None:
        from routellm_core.data.templates import SharedBoilerplate

        try:
            router.query_template_ = SharedBoilerplate.from_lines(
                config["query_template"], where="query_template"
            )
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
    card = config.get("card") or {}
    if not isinstance(card, dict):
        raise CheckpointError(f"{directory}: 'card' must be a JSON object, got {type(card).__name__}")
    router.card_ = dict(card)
    load_files = getattr(router, "_load_files", None)
    if load_files is not None:
        pinned.by_path = True
        try:
            load_files(directory)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"{directory}: the {cls.router_type} router's files do not load: {exc!r:.500}"
            ) from exc
    return router


def _check_loaded(router: Any) -> None:
    """What scoring will ask of a loaded router, asked at load: its model names and, for a
    binary router, the pair it routes between (so a bad name fails here, not on a call)."""
    models = router.known_models
    if models is not None and not all(isinstance(m, str) and m for m in models):
        raise ValueError(f"model names must be non-empty strings, got {models!r:.200}")
    if isinstance(router, Router):
        router.resolve_pair()


def load_router(
    name_or_path: str | os.PathLike[str] = "default",
    *,
    revision: str | None = None,
    encoder: QueryEncoder | str | None = None,
    **router_params: Any,
) -> Router:
    """Load a router: ``"default"`` or ``"default-fast"`` (embedded), ``"random"``, a local
    directory, or a Hub repo id.

    Every checkpoint is verified first (see the module docstring): a pickle, an unlisted or
    modified file, or anything pointing outside the checkpoint raises :class:`CheckpointError`.

    Args:
        name_or_path: ``"default"`` (all-MiniLM-L6-v2 encoder); ``"default-fast"`` (the same
            recipe on the static encoder distilled from it: about 0.1 ms a query to encode, see
            :mod:`routellm_core.static_encoder`); ``"random"`` (the untrained baseline); a checkpoint
            directory; or a Hugging Face Hub repo: ``"hf://org/name"``, or ``"org/name"`` with
            a ``revision`` (a bare ``"org/name"`` that is not a local directory is an error
            that says so, never a silent fetch).
        revision: Hub branch, tag or commit to pin (a commit hash pins the exact files).
        encoder: override the query encoder (an instance shares its cache across routers).
        router_params: for ``"random"`` only, e.g. ``seed=0``.

    Example:
        >>> load_router("random", seed=0).router_type
        'random'
    """
    target = str(name_or_path)
    if target == "random":
        from routellm_core.routers import RandomRouter

        return RandomRouter(**router_params)
    if router_params:
        raise TypeError(
            f"unexpected parameters for a checkpoint: {sorted(router_params)}"
        )
    if target in EMBEDDED:
        return load_checkpoint_dir(_embedded_dir(target), encoder=encoder)
    explicit = target.startswith(HUB_PREFIX)
    if explicit:
        target = target[len(HUB_PREFIX):]
    else:
        local = Path(target).expanduser()
        if local.exists():
            return load_checkpoint_dir(local, encoder=encoder)
    if target.count("/") != 1 or target.startswith((".", "/")) or target.endswith("/"):
        raise CheckpointError(
            f"{name_or_path!r} is neither 'default', 'default-fast', 'random', an existing checkpoint directory, "
            f"nor a Hugging Face Hub repo id ('{HUB_PREFIX}org/name', or 'org/name' with revision=)"
        )
    if not explicit and revision is None:
        raise CheckpointError(
            f"no checkpoint directory {target!r} (looked in {Path.cwd()}); to fetch it from the "
            f"Hugging Face Hub instead, write '{HUB_PREFIX}{target}' or pass revision="
        )
    if revision is None or not re.fullmatch(r"[0-9a-f]{40}", revision):
        warnings.warn(
            f"loading router {target!r} from the Hugging Face Hub at the unpinned revision "
            f"{revision or 'main'!r}: what it holds can change; pin a commit with "
            "load_router(..., revision='<40-hex sha>')",
            RouteLLMWarning,
            stacklevel=2,
        )
    snapshot = _download(target, revision)
    return load_checkpoint_dir(
        snapshot, encoder=encoder, trusted_root=_repo_root(snapshot)
    )


def load_nway_router(
    name_or_path: str | os.PathLike[str] = "default", **kwargs: Any
) -> NWayRouter:
    """Load an N-way router: ``"default"`` (embedded), a checkpoint directory, or a Hub repo id.

    Takes what :func:`load_router` takes; raises :class:`CheckpointError` when the checkpoint
    holds a binary (strong/weak) router instead.

    Example:
        >>> load_nway_router("default").router_type
        'quality'
    """
    target = NWAY_DEFAULT_DIR if str(name_or_path) == "default" else name_or_path
    router = load_router(target, **kwargs)
    if not isinstance(router, NWayRouter):
        raise CheckpointError(
            f"{name_or_path!s} holds a {router.router_type!r} strong/weak router, not an N-way router; "
            "load it with load_router()"
        )
    return router


def as_router(
    router: Router | str | os.PathLike[str],
    *,
    revision: str | None = None,
    encoder: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Router:
    """``router`` itself when it is a router, else :func:`load_router` of it, with the encoder
    ``encoder`` (a sentence-transformers id or path) and/or the embedding cache ``cache_dir``.

    Example:
        >>> as_router("random", encoder=None).router_type
        'random'
    """
    if isinstance(router, Router):
        return router
    loaded = load_router(router, revision=revision,
                         encoder=QueryEncoder(encoder, cache_dir=cache_dir) if encoder else None)
    return with_encoder_cache(loaded, cache_dir) if cache_dir and not encoder else loaded


def with_encoder_cache(router: Any, cache_dir: str | os.PathLike[str]) -> Any:
    """``router`` (binary or N-way) embedding with the encoder its checkpoint records, through
    the on-disk embedding cache in ``cache_dir``; a router given an encoder object keeps it."""
    if router.uses_encoder and not isinstance(router.encoder, QueryEncoder):
        router.encoder = QueryEncoder(router.encoder, cache_dir=cache_dir)
    return router


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
