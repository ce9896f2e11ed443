"""Follow the live router version of a traffic store: every replica routes with what was published.

``routellm promote ... --publish STORE`` (or :meth:`TrafficStore.publish_router
<routellm_core.store.TrafficStore.publish_router>`) records a promoted checkpoint as a
new router version in the store: its location (a directory on shared storage or an
``hf://org/name`` id), its digest (:func:`checkpoint_sha256`), the promotion's figures, who and
when; ``routellm promote --rollback --store STORE`` makes the version before it live again.

A :class:`RouterFromStore` given as ``router=`` to ``ChatRouteLLM`` / ``RouterRunnable``
(LangChain) or ``RouteLLM`` (LlamaIndex) routes with the store's live version: it loads it when
made, then a daemon thread polls the store every ``poll_interval`` seconds, off the call path.
When another version is live (a publish, or a rollback), the thread loads its checkpoint,
checks that it has the published digest and loads with its calibration table, and swaps it into
every model that follows it, with the adapters' own ``swap_router`` mechanism: a call in flight
finishes on the router it started with, the next one takes the new router, and no call waits.
On any failure (the store unreachable, the checkpoint missing, corrupt or changed since it was
published, a router the models cannot route with) the old router stays and a
:class:`RouterVersionWarning` says why, once per version.

The follower holds the models weakly: following never keeps a model alive. :meth:`RouterFromStore.close`
ends the thread (a follower nobody holds ends it too); :meth:`RouterFromStore.poll_now` polls at
once, in the caller's thread.

Example:
    >>> import os, tempfile
    >>> from routellm_core.checkpoints import DEFAULT_DIR
    >>> from routellm_core.learning import TrafficStore
    >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "traffic.db"))
    >>> v = store.publish_router(str(DEFAULT_DIR), sha256=checkpoint_sha256(DEFAULT_DIR), by="docs")
    >>> follower = RouterFromStore(store, poll_interval=30.0)
    >>> follower.version.version, follower.router.router_type
    (1, 'sw_ranking')
    >>> follower.poll_now()            # nothing new published
    False
    >>> follower.close()
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routellm_core.errors import RouterVersionWarning

if TYPE_CHECKING:
    from routellm_core.store import RouterVersion, TrafficStore

logger = logging.getLogger("routellm_core.routing")
MIN_POLL_INTERVAL = 0.1      # seconds: the shortest poll interval a follower takes
MAX_POLL_INTERVAL = 3600.0   # seconds: the longest (a replica learns of a new version within it)
HUB_PREFIX = "hf://"

Swap = Callable[[Any, Any], None]  # swap(owner, router): route ``owner`` with ``router`` from now on


def _digest_of(directory: Path, trusted_root: Path | None) -> str:
    from routellm_core.checkpoints import CONFIG_NAME, CheckpointError, verify_checkpoint

    for _ in range(3):
        config = verify_checkpoint(directory, trusted_root=trusted_root)
        try:
            raw = (directory / CONFIG_NAME).read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{directory}: {CONFIG_NAME} cannot be read ({exc})") from None
        try:
            same = json.dumps(json.loads(raw), sort_keys=True) == json.dumps(config, sort_keys=True)
        except ValueError:
            same = False
        if same:  # the config read is the one verified (not swapped meanwhile)
            return hashlib.sha256(raw).hexdigest()
    raise CheckpointError(f"{directory} kept changing while its digest was taken")


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """The digest of a checkpoint directory: the sha256 of its ``config.json``, which lists the
    sha256 of every other file, taken after
    :func:`~routellm_core.checkpoints.verify_checkpoint` checked each of them against it. Two
    checkpoints have the same digest only when they hold the same files.

    Raises:
        CheckpointError: the directory is not a valid checkpoint (missing, corrupt, unsafe).

    Example:
        >>> from routellm_core.checkpoints import DEFAULT_DIR
        >>> len(checkpoint_sha256(DEFAULT_DIR))
        64
    """
    return _digest_of(Path(path), None)


def _fetch(location: str) -> tuple[Path, Path | None]:
    """The local directory of a version's location, and the root its symlinks may point into
    (a Hub snapshot's repo folder); ``hf://org/name[@revision]`` is downloaded."""
    from routellm_core.checkpoints import CheckpointError

    if not location.startswith(HUB_PREFIX):
        return Path(location), None
    from routellm_core.checkpoints import _download, _repo_root

    repo, _, revision = location[len(HUB_PREFIX):].partition("@")
    if repo.count("/") != 1 or not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo):
        raise CheckpointError(f"{location!r} is not a Hub location 'hf://org/name' (or 'hf://org/name@revision')")
    snapshot = _download(repo, revision or None)
    return snapshot, _repo_root(snapshot)


def load_version(version: RouterVersion) -> Any:
    """The router of a published version, loaded only when its checkpoint has the published
    digest (before and after the load) and, for a strong/weak router, a calibration table.

    Raises:
        CheckpointError: the checkpoint is missing, corrupt, unsafe, other than the one
            published (its digest differs) or without a calibration table.

    Example:
        >>> from routellm_core.checkpoints import DEFAULT_DIR
        >>> from routellm_core.learning import RouterVersion
        >>> v = RouterVersion(version=1, created_at=0.0, location=str(DEFAULT_DIR),
        ...                   sha256=checkpoint_sha256(DEFAULT_DIR))
        >>> load_version(v).router_type
        'sw_ranking'
    """
    from routellm_core.checkpoints import CheckpointError

    where = f"router version {version.version} ({version.location})"
    try:
        return _load_version(version, where)
    except CheckpointError as exc:
        if str(exc).startswith(where):
            raise
        raise CheckpointError(f"{where}: {exc}") from exc
    except OSError as exc:
        raise CheckpointError(f"{where}: the checkpoint cannot be read ({type(exc).__name__}: {exc})") from exc


def _load_version(version: RouterVersion, where: str) -> Any:
    from routellm_core.checkpoints import CheckpointError, load_checkpoint_dir
    from routellm_core.routers.base import Router

    directory, root = _fetch(version.location)
    for _ in range(2):
        digest = _digest_of(directory, root)
        if digest != version.sha256:
            raise CheckpointError(f"{where}: the checkpoint's sha256 is {digest}, not the published {version.sha256}; "
                                  "it was changed or damaged after it was published (publish it again, or roll back)")
        router = load_checkpoint_dir(directory, trusted_root=root)
        if _digest_of(directory, root) == digest:  # what was loaded is what was checked
            break
    else:
        raise CheckpointError(f"{where}: the checkpoint kept changing while it was loaded")
    if isinstance(router, Router) and router.calibration_ is None:
        raise CheckpointError(f"{where}: the router has no calibration table, so strong_fraction settings could not "
                              "route with it; publish a calibrated checkpoint (routellm train adds one)")
    return router


def _first_line(exc: BaseException, limit: int) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "")[:limit]


def _check_interval(poll_interval: Any) -> float:
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) \
            or not MIN_POLL_INTERVAL <= poll_interval <= MAX_POLL_INTERVAL:
        raise ValueError(f"poll_interval must be a number of seconds in [{MIN_POLL_INTERVAL:g}, "
                         f"{MAX_POLL_INTERVAL:g}], got {poll_interval!r}")
    return float(poll_interval)


def _poll_loop(ref: weakref.ref[RouterFromStore], stop: threading.Event, interval: float) -> None:
    """The thread: poll every ``interval`` seconds until ``stop`` is set or the follower is gone
    (it holds the follower only while polling, so a follower nobody holds is collected)."""
    while not stop.wait(interval):
        follower = ref()
        if follower is None:
            return
        try:
            follower.poll_now()
        except Exception as exc:  # poll_now warns of what it expects; never let the thread die
            logger.warning("polling the traffic store for a new router version failed: %s: %s",
                           type(exc).__name__, exc)
        del follower


class RouterFromStore:
    """The live router version of a traffic store, followed: a ``router=`` for the adapters.

    Loads the store's live version when made; then a daemon thread polls the store every
    ``poll_interval`` seconds and swaps each newly live version (a publish or a rollback) into
    every model that routes with this follower, after checking its digest and calibration
    (see the module docstring). One follower can serve any number of models; make one per
    process and share it.

    Args:
        store: a :class:`~routellm_core.learning.TrafficStore`, a SQLite path or a SQLAlchemy URL
            (``"postgresql+psycopg://..."``) of the store that holds the published versions.
        poll_interval: seconds between polls, in [0.1, 3600] (default 30): a replica routes with
            a new version at most about this long after it was published.
        start: start the polling thread (default); with ``False``, only :meth:`poll_now` polls.

    Attributes:
        store: the traffic store.
        poll_interval: the seconds between polls.

    Raises:
        StoreError: the store cannot be opened, or has no live router version (publish one
            first: ``routellm promote ... --publish STORE``).
        CheckpointError: the live version's checkpoint cannot be loaded (missing, corrupt, another
            digest than published, no calibration table).
        ValueError: a poll interval out of range.

    Example:
        .. code-block:: python

            from langchain_routellm import ChatRouteLLM
            from routellm_core.routing import RouterFromStore

            follow = RouterFromStore("postgresql+psycopg://app@db/routellm", poll_interval=30)
            llm = ChatRouteLLM(strong=strong, weak=weak, router=follow, strong_fraction=0.3)
            ...
            follow.close()      # at shutdown: ends the polling thread
    """

    def __init__(self, store: TrafficStore | str | os.PathLike[str], *, poll_interval: float = 30.0,
                 start: bool = True) -> None:
        from routellm_core.store import StoreError, open_store

        self.poll_interval = _check_interval(poll_interval)
        self.store = open_store(store, must_exist=True)
        live = self.store.live_router()
        if live is None:
            raise StoreError(f"the traffic store {self.store.url!r} has no published router version to follow: "
                             "publish one first (routellm promote ... --publish STORE, or "
                             "TrafficStore.publish_router)")
        self._current: tuple[RouterVersion, Any] = (live, load_version(live))
        self._lock = threading.Lock()        # guards _current and _subscribers together
        self._poll_lock = threading.Lock()   # one poll at a time
        self._subscribers: list[tuple[weakref.ref[Any], Swap]] = []
        self._warned: set[Any] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        weakref.finalize(self, self._stop.set)
        if start:
            self._thread = threading.Thread(target=_poll_loop, args=(weakref.ref(self), self._stop,
                                                                     self.poll_interval),
                                            name="routellm-router-follower", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ what it routes with
    @property
    def version(self) -> RouterVersion:
        """The router version loaded now (the live one, unless a newer one failed to load)."""
        return self._current[0]

    @property
    def router(self) -> Any:
        """The loaded router of :attr:`version`."""
        return self._current[1]

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ended the polling."""
        return self._stop.is_set()

    def subscribe(self, owner: Any, swap: Swap, *, current: Any = None) -> None:
        """Swap each new version into ``owner`` with ``swap(owner, router)``, from the polling
        thread; ``owner`` is held weakly (a collected owner is dropped). ``current``: the router
        ``owner`` routes with now; when a newer one was loaded meanwhile it is swapped in at once.
        The adapters call this for a ``router=`` that is a follower."""
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s[0]() is not None] + [(weakref.ref(owner), swap)]
            router = self._current[1]
        if current is not None and current is not router:
            swap(owner, router)

    def followers(self) -> int:
        """How many models (still alive) follow this store through this object."""
        with self._lock:
            return sum(1 for ref, _ in self._subscribers if ref() is not None)

    # ------------------------------------------------------------------ polling
    def _warn(self, key: Any, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning(message)
        warnings.warn(message, RouterVersionWarning, stacklevel=3)

    def poll_now(self) -> bool:
        """Poll the store now, in this thread: when another version is live, load it, check it
        and swap it into every follower. ``True`` when a new version was loaded; ``False`` when
        none is, or it could not be (the old router stays; a :class:`RouterVersionWarning` says
        why, once per version). Never raises for a store or checkpoint failure."""
        with self._poll_lock:
            before = self._current[0]
            try:
                live = self.store.live_router()
            except Exception as exc:
                self._warn(("store", type(exc).__name__),
                           f"cannot read the live router version from the traffic store {self.store.url!r} "
                           f"({type(exc).__name__}: {_first_line(exc, 200)}); still routing with version "
                           f"{before.version}")
                return False
            if live is None:
                self._warn(("none",), f"the traffic store {self.store.url!r} has no live router version (every "
                                      f"one was rolled back); still routing with version {before.version}")
                return False
            if live.version == before.version:
                return False
            try:
                router = load_version(live)
            except Exception as exc:
                self._warn(("version", live.version),
                           f"router version {live.version} ({live.location}) was not loaded: {type(exc).__name__}: "
                           f"{_first_line(exc, 300)}; still routing with version {before.version}")
                return False
            with self._lock:
                self._current = (live, router)
                subscribers = list(self._subscribers)
            for ref, swap in subscribers:
                owner = ref()
                if owner is None:
                    continue
                try:
                    swap(owner, router)
                except Exception as exc:
                    self._warn(("swap", live.version, type(exc).__name__),
                               f"router version {live.version} ({live.location}) cannot route a "
                               f"{type(owner).__name__} ({type(exc).__name__}: {_first_line(exc, 300)}); it keeps its "
                               "router")
            logger.info("now routing with router version %d (%s), was %d", live.version, live.location,
                        before.version)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling and end the thread (waiting ``timeout`` seconds at most); the models keep
        the router they have. Safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> RouterFromStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __copy__(self) -> RouterFromStore:
        return self  # one handle on the store's live version: copies of a model share it

    def __deepcopy__(self, memo: dict[int, Any]) -> RouterFromStore:
        return self

    def __repr__(self) -> str:
        return (f"RouterFromStore({self.store.url!r}, version={self.version.version}, "
                f"poll_interval={self.poll_interval:g})")


def live_router_of(router: Any) -> Any:
    """``router``'s loaded router when it is a :class:`RouterFromStore`, else ``router`` itself.

    Example:
        >>> live_router_of("default")
        'default'
    """
    return router.router if isinstance(router, RouterFromStore) else router


def follow(router: Any, owner: Any, swap: Swap, *, pool: Any = None) -> None:
    """When ``router`` (an adapter's ``router=``) is a :class:`RouterFromStore`, subscribe
    ``owner`` to it (see :meth:`RouterFromStore.subscribe`); ``pool`` is the
    :class:`~routellm_core.routing.Pool` ``owner`` routes with now. Else nothing."""
    if isinstance(router, RouterFromStore):
        router.subscribe(owner, swap, current=None if pool is None else pool._load())


__all__ = ["MAX_POLL_INTERVAL", "MIN_POLL_INTERVAL", "RouterFromStore", "RouterVersionWarning", "checkpoint_sha256",
           "follow", "live_router_of", "load_version"]
