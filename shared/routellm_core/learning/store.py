"""The traffic store: routed calls, labelled battles and user feedback in one SQL database.

A SQLite file by default (give a path); any SQLAlchemy URL otherwise: a PostgreSQL database
(``postgresql+psycopg://...``, the ``postgres`` extra) is the store several replicas share.
Three tables of data:

- ``calls``: each routed call the adapters captured (opt-in): the query text (after the
  ``redact`` hook), the decision, the chosen model, tokens and cost;
- ``battles``: labelled comparisons in the project's schema (``query, model_a, model_b,
  winner, source``) with provenance: the judge, its prompt, both verdicts, both answers, costs,
  the time; ``winner`` is empty for an unparsable verdict (kept, never used for training);
- ``feedback``: ratings attached to a call id (thumbs up / down or a score); a rating must
  name a captured call.

A ``meta`` table records facts about the store itself: its ``schema_version``
(:data:`SCHEMA_VERSION`), and ``redacted`` once a redact hook was applied; a ``claims`` table
holds the prompts labellers are paying for; ``router_versions`` the routers published for replicas
to follow (:meth:`TrafficStore.publish_router`, :meth:`TrafficStore.rollback`). Opening a store
creates or upgrades its tables in place (:data:`MIGRATIONS`), one process at a time (a
PostgreSQL advisory lock, SQLite's write lock), so replicas may start together; a store newer
than this code is refused.

One redaction hook per store: in a process, every :class:`TrafficStore` of one
database shares its hook (:func:`open_store` returns the same object), so capture, the shadow
labeller, ``label`` and ratings all redact alike; in another process, a store opened without
the hook refuses to write text into a redacted store.

:meth:`TrafficStore.training_battles` is what ``routellm train store:PATH`` reads: the judged
battles, plus one battle per rated weak call (a "down" on a weak call says the strong model was
needed: the strong model wins; an "up" says the weak answer was good enough: a tie). Ratings of
strong calls say nothing about the weak model and give no battle.

Writes from live calls go through a :class:`BackgroundWriter`: off the call path, never
blocking it; a store error is a warning, counted, never the user's exception. At exit the
process waits (10 s by default) for writes still queued, and counts any it could not write in a
warning on stderr.

Example:
    >>> import tempfile, os
    >>> from routellm_core.learning.store import TrafficStore
    >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "traffic.db"))
    >>> store.add_battle(query="2+2?", model_a="big", model_b="small", winner="tie", source="doc")
    True
    >>> store.training_battles()[["query", "winner"]].values.tolist()
    [['2+2?', 'tie']]
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import re
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from routellm_core.data.schema import BATTLE_COLUMNS, make_battles
from routellm_core.errors import StoreError

logger = logging.getLogger("routellm_core.learning")
Redact = Callable[[str], str]
RATINGS: dict[str, float] = {"up": 1.0, "down": 0.0}
MAX_ID_CHARS = 64          # the call_id columns are String(64)
MAX_COMMENT_CHARS = 10_000  # a rating's comment
EXIT_TIMEOUT = 10.0        # seconds a process waits at exit for queued store writes (BackgroundWriter)
PAGE_KEYS = 500            # battle keys looked up in one statement (TrafficStore.existing_keys)


def battle_key(query: str, model_a: str, model_b: str, judge: str, prompt: str) -> str:
    """What makes a labelled battle the same one again (used to resume labelling)."""
    raw = json.dumps([query, model_a, model_b, judge, prompt], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _tables(metadata: Any) -> dict[str, Any]:
    from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text

    return {
        "calls": Table(
            "calls", metadata,
            Column("call_id", String(64), primary_key=True), Column("created_at", Float, nullable=False, index=True),
            Column("source", String(32)), Column("query", Text, nullable=False), Column("route", String(200)),
            Column("model", String(200)), Column("strong_model", String(200)), Column("weak_model", String(200)),
            Column("router", String(200)), Column("rule", String(16)), Column("win_rate", Float),
            Column("threshold", Float), Column("router_failed", Boolean), Column("decision", Text),
            Column("input_tokens", Integer), Column("output_tokens", Integer),
            Column("tokens_estimated", Boolean), Column("cost", Float), Column("failed", Boolean)),
        "battles": Table(
            "battles", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("key", String(64), unique=True, nullable=False), Column("created_at", Float, nullable=False),
            Column("query", Text, nullable=False), Column("model_a", String(200), nullable=False),
            Column("model_b", String(200), nullable=False), Column("winner", String(8)),
            Column("source", String(200), nullable=False), Column("judge", String(200)),
            Column("judge_prompt", String(64)), Column("verdict_first", String(8)),
            Column("verdict_second", String(8)), Column("answer_a", Text), Column("answer_b", Text),
            Column("cost_a", Float), Column("cost_b", Float), Column("cost_judge", Float),
            Column("call_id", String(64), index=True)),
        "feedback": Table(
            "feedback", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("call_id", String(64), nullable=False, index=True), Column("created_at", Float, nullable=False),
            Column("rating", Float, nullable=False), Column("label", String(16)), Column("comment", Text)),
        "meta": Table(
            "meta", metadata,
            Column("key", String(64), primary_key=True), Column("value", Text, nullable=False)),
        "claims": Table(
            "claims", metadata,
            Column("key", String(64), primary_key=True), Column("owner", String(64), nullable=False),
            Column("created_at", Float, nullable=False), Column("expires_at", Float, nullable=False)),
        "router_versions": Table(
            "router_versions", metadata,
            Column("version", Integer, primary_key=True, autoincrement=False),
            Column("created_at", Float, nullable=False), Column("location", Text, nullable=False),
            Column("sha256", String(64), nullable=False), Column("figures", Text),
            Column("published_by", String(200)), Column("note", Text),
            Column("rolled_back_at", Float), Column("rolled_back_by", String(200))),
        "learn_cycles": Table(
            "learn_cycles", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("started_at", Float, nullable=False, index=True), Column("finished_at", Float),
            Column("status", String(32), nullable=False), Column("version", Integer), Column("report", Text)),
    }


def _url(target: Any) -> Any:
    """``target`` as a SQLAlchemy ``URL`` object. A path is a SQLite file whose name is kept
    literally: ``?``, ``%``, ``#`` and spaces are part of the name, never a query string or an
    escape. A SQLite URL's relative file is made absolute, so that one file has one URL."""
    from sqlalchemy.engine import URL, make_url

    if isinstance(target, URL):
        url = target
    else:
        text = os.fspath(target)
        if "://" not in text:
            return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
        url = make_url(text)
    file = _sqlite_file(url)
    if file is not None and not Path(file).is_absolute():
        url = url.set(database=str(Path(file).expanduser().resolve()))
    return url


def _sqlite_file(url: Any) -> str | None:
    """The file of a SQLite URL; ``None`` for another database, an in-memory one or a ``file:`` URI."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return url.database


class _Database:
    """What every :class:`TrafficStore` of one database shares in this process: the redact hook,
    and whether the store is known to be marked redacted."""

    def __init__(self) -> None:
        self.redact: Redact | None = None
        self.marked = False


_LOCK = threading.RLock()
_DATABASES: dict[str, _Database] = {}                                  # the normalised URL -> its state
_OPEN: weakref.WeakValueDictionary[str, TrafficStore] = weakref.WeakValueDictionary()  # what open_store reuses


def _database_key(url: Any) -> str | None:
    """The registry key of a database: its full URL; ``None`` for in-memory SQLite, where every
    engine has a database of its own."""
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _hook_name(hook: Any) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__name__


def _check_id(call_id: Any) -> None:
    text = str(call_id)
    if len(text) > MAX_ID_CHARS:
        raise StoreError(f"a call id has at most {MAX_ID_CHARS} characters, got {len(text):,}: {text[:40]!r}...")


SCHEMA_VERSION = 3
"""The schema version this code writes and reads (see :data:`MIGRATIONS`); recorded in the
``meta`` table as ``schema_version``. A store with a newer version is refused."""
_SCHEMA_LOCK = 0x726F_7574_656C_6C6D  # "routellm": the PostgreSQL advisory lock taken around migrations


def _migrate_1(conn: Any, tables: dict[str, Any]) -> None:
    """Version 1: the ``calls``, ``battles`` and ``feedback`` tables."""
    for name in ("calls", "battles", "feedback"):
        tables[name].create(conn, checkfirst=True)


def _migrate_2(conn: Any, tables: dict[str, Any]) -> None:
    """Version 2: the ``meta`` and ``claims`` tables, and the indexes the loop's queries use
    (calls by time; battles and feedback by call)."""
    for name in ("meta", "claims"):
        tables[name].create(conn, checkfirst=True)
    for name in ("calls", "battles", "feedback"):
        for index in sorted(tables[name].indexes, key=lambda ix: ix.name):
            index.create(conn, checkfirst=True)


def _migrate_3(conn: Any, tables: dict[str, Any]) -> None:
    """Version 3: the ``router_versions`` table (the published routers, for replicas to follow)
    and the ``learn_cycles`` table (the reports of ``routellm learn``)."""
    tables["router_versions"].create(conn, checkfirst=True)
    tables["learn_cycles"].create(conn, checkfirst=True)


MIGRATIONS: tuple[tuple[int, Callable[[Any, dict[str, Any]], None]], ...] = (
    (1, _migrate_1), (2, _migrate_2), (3, _migrate_3))
"""``(version, step)`` in order: ``step`` brings a store of the version before to ``version``.
Every step is idempotent (it creates only what is missing)."""


def _schema_version(conn: Any, tables: dict[str, Any]) -> int:
    """The store's schema version: ``meta.schema_version``; 1 for a store written before versions
    were recorded (it has a ``calls`` table); 0 for an empty database. Never a failing statement
    (which would abort a PostgreSQL transaction): what exists is looked up first."""
    from sqlalchemy import inspect, select

    found = inspect(conn)
    if found.has_table("meta"):
        meta = tables["meta"]
        value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        if value is not None:
            try:
                return int(value)
            except ValueError:
                raise StoreError(f"the traffic store's schema_version is {value!r}, not a number") from None
    return 1 if found.has_table("calls") else 0


def _check_version(url: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(f"the traffic store {url!r} has schema version {version}, newer than this routellm-lc "
                         f"knows (schema version {SCHEMA_VERSION}): upgrade routellm-lc (pip install -U routellm-lc) "
                         "wherever this store is opened")


def _read_only(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "read only" in text


def _migrate(engine: Any, url: str, tables: dict[str, Any], attempts: int = 5) -> None:
    """Bring the store to :data:`SCHEMA_VERSION`, safely while other processes do the same.

    A store at the current version is only read. Otherwise one transaction, under a lock that
    serialises every migrator of the database, reads the version again and runs the missing
    steps of :data:`MIGRATIONS`: on PostgreSQL a transaction-level advisory lock
    (``pg_advisory_xact_lock``; the DDL is transactional, so a failed migration leaves nothing
    half-done); on SQLite the file's write lock (``BEGIN IMMEDIATE``). Other databases have no
    such lock: a step that meets a table another process created at the same moment is retried.
    An older store that cannot be written (a read-only file) still opens for reading.

    Raises:
        StoreError: the store's schema version is newer than this code's.
    """
    from sqlalchemy import text

    for attempt in range(attempts):
        with engine.connect() as conn:
            version = _schema_version(conn, tables)
            conn.rollback()
            _check_version(url, version)
            if version == SCHEMA_VERSION:
                return
            try:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
                elif conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                version = _schema_version(conn, tables)  # under the lock: another process may have migrated
                _check_version(url, version)
                for target, step in MIGRATIONS:
                    if target > version:
                        step(conn, tables)
                if version < SCHEMA_VERSION:
                    meta = tables["meta"]
                    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
                    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                conn.commit()
                return
            except StoreError:
                conn.rollback()
                raise
            except Exception as exc:
                conn.rollback()
                if version >= 1 and _read_only(exc):
                    logger.info("the traffic store %r (schema version %d) is read-only: opened for reading, "
                                "not migrated", url, version)
                    return
                message = str(exc).lower()
                if attempt == attempts - 1 or not ("already exists" in message or "duplicate key" in message):
                    raise
        time.sleep(0.05 * (attempt + 1))


def _float(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f


MAX_LOCATION_CHARS = 4096  # a router version's location
_VERSIONS_LOCK = _SCHEMA_LOCK + 1  # the PostgreSQL advisory lock taken around publish / rollback
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RouterVersion:
    """One published router in the store's ``router_versions`` table (see
    :meth:`TrafficStore.publish_router`).

    Attributes:
        version: 1, 2, ...: increasing in the order of publication, never reused.
        created_at: when it was published (seconds since the epoch).
        location: where its checkpoint is: an absolute directory path (on storage every replica
            reads) or a Hugging Face Hub id ``hf://org/name`` (``@revision`` may pin it).
        sha256: the checkpoint's digest
            (:func:`~routellm_core.routing.follow.checkpoint_sha256`); a replica loads it only
            when the checkpoint it finds has this digest.
        figures: the promotion's comparison figures (APGR of both routers, the difference with
            its interval, the strong shares); ``{}`` when none were given.
        published_by: who published it.
        note: free text.
        rolled_back_at: when it was rolled back (``None`` while it was not).
        rolled_back_by: who rolled it back.

    Example:
        >>> RouterVersion(version=1, created_at=0.0, location="/srv/r1", sha256="0" * 64).rolled_back
        False
    """

    version: int
    created_at: float
    location: str
    sha256: str
    figures: dict[str, Any] = field(default_factory=dict, hash=False)
    published_by: str | None = None
    note: str | None = None
    rolled_back_at: float | None = None
    rolled_back_by: str | None = None

    @property
    def rolled_back(self) -> bool:
        """Whether this version was rolled back (it is never live again)."""
        return self.rolled_back_at is not None

    @classmethod
    def _of(cls, row: Mapping[str, Any]) -> RouterVersion:
        try:
            figures = json.loads(row["figures"]) if row["figures"] else {}
        except ValueError:
            figures = {"unreadable": str(row["figures"])[:200]}
        return cls(version=int(row["version"]), created_at=float(row["created_at"]), location=row["location"],
                   sha256=row["sha256"], figures=figures if isinstance(figures, dict) else {"value": figures},
                   published_by=row["published_by"], note=row["note"], rolled_back_at=_float(row["rolled_back_at"]),
                   rolled_back_by=row["rolled_back_by"])


def _check_location(location: Any) -> str:
    """``location`` if it names a checkpoint every replica can find, else :class:`StoreError`."""
    if not isinstance(location, str) or not location.strip():
        raise StoreError(f"a router version's location is a checkpoint directory or 'hf://org/name', got {location!r}")
    if len(location) > MAX_LOCATION_CHARS or "\x00" in location or location != location.strip():
        raise StoreError(f"a router version's location must be a plain path or Hub id of at most "
                         f"{MAX_LOCATION_CHARS} characters without surrounding blanks, got {location[:80]!r}")
    if location.startswith("hf://"):
        repo = location[len("hf://"):].split("@", 1)[0]
        if repo.count("/") != 1 or repo.startswith(("/", ".")) or repo.endswith("/"):
            raise StoreError(f"a Hub location is 'hf://org/name' (or 'hf://org/name@revision'), got {location!r}")
        return location
    if not os.path.isabs(location):
        raise StoreError(f"a router version's location must be an absolute directory path (every replica reads "
                         f"the same one) or 'hf://org/name', got the relative path {location!r}")
    return location


def _check_who(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a str or None, got a {type(value).__name__}")
    if len(value) > limit:
        raise StoreError(f"{what} has at most {limit:,} characters, got {len(value):,}")
    return value


class TrafficStore:
    """Calls, battles and feedback in a SQL database (see the module docstring).

    One redaction hook per store: every store of one database in a process shares its
    ``redact`` hook (:func:`open_store` returns the same object for the same database), so a
    hook given to any of them (e.g. by ``TrafficCapture(path, redact=...)``) applies to every
    writer of that database: capture, the shadow labeller, ``label``, ratings. A second,
    different hook for the same database is an error. Once a hook is applied the store is marked
    redacted (its ``meta`` table), and a store opened without a hook, in any process, refuses
    to write text into it; reading stays allowed.

    Args:
        target: a file path (SQLite; the name is kept literally) or a SQLAlchemy URL.
        redact: runs on every query, answer and comment text before it is stored (e.g. masking
            emails).
        must_exist: open an existing store only (for reading): a SQLite file that does not exist
            is an error, and is not created.

    Raises:
        StoreError: the database cannot be opened or its tables created; it does not exist
            (``must_exist``); another hook is set for it already.
    """

    def __init__(self, target: Any, *, redact: Redact | None = None, must_exist: bool = False) -> None:
        from sqlalchemy import MetaData, create_engine, inspect

        try:
            url = _url(target)
        except Exception as exc:
            raise StoreError(f"cannot open the traffic store {str(target)!r}: it is neither a file path nor a "
                             f"SQLAlchemy URL ({type(exc).__name__}: {exc})") from exc
        self.url: str = url.render_as_string(hide_password=True)
        key = _database_key(url)
        file = _sqlite_file(url)
        if must_exist and file is not None and not Path(file).is_file():
            raise StoreError(f"the traffic store {self.url!r} does not exist (no file {file!r})")
        if must_exist and key is None:
            raise StoreError(f"the traffic store {self.url!r} does not exist (an in-memory database is empty)")
        try:
            self.engine = create_engine(url, future=True)
            if must_exist and file is None and not inspect(self.engine).has_table("calls"):
                raise StoreError(f"the traffic store {self.url!r} does not exist (the database has no "
                                 "'calls' table)")
            self.metadata = MetaData()
            self.tables = _tables(self.metadata)
            _migrate(self.engine, self.url, self.tables)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open the traffic store {self.url!r}: {type(exc).__name__}: {exc}") from exc
        with _LOCK:
            self._db = _Database() if key is None else _DATABASES.setdefault(key, _Database())
            if key is not None and _OPEN.get(key) is None:
                _OPEN[key] = self
        if redact is not None:
            self.redact = redact

    @property
    def redact(self) -> Redact | None:
        """The redact hook of this database in this process (shared by all its stores)."""
        return self._db.redact

    @redact.setter
    def redact(self, hook: Redact | None) -> None:
        if hook is None:
            if self._db.redact is not None:
                raise StoreError(f"the traffic store {self.url!r} has a redact hook ({_hook_name(self._db.redact)}); "
                                 "it cannot be removed: every writer of a redacted store redacts")
            return
        if not callable(hook):
            raise TypeError(f"redact must be a function str -> str, got a {type(hook).__name__}")
        with _LOCK:
            current = self._db.redact
            if current is not None and current is not hook and current != hook:
                raise StoreError(f"the traffic store {self.url!r} already has another redact hook in this process "
                                 f"({_hook_name(current)}, not {_hook_name(hook)}): one store takes one hook, so give "
                                 "the same function to every TrafficCapture / TrafficStore of this database")
            self._db.redact = hook
        self._mark_redacted()

    def _meta(self) -> Any:
        """The ``meta`` table: key / value facts about the store (``schema_version``, ``redacted``)."""
        return self.tables["meta"]

    def _mark_redacted(self) -> None:
        """Record in the store that its text is redacted (seen by every process that opens it)."""
        if self._db.marked:
            return
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        meta = self._meta()
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(meta.c.key).where(meta.c.key == "redacted")).first() is None:
                    conn.execute(meta.insert().values(key="redacted", value=f"since {time.time():.0f}"))
        except IntegrityError:  # another process marked it at the same time
            pass
        except Exception as exc:
            raise StoreError(f"cannot mark the traffic store {self.url!r} as redacted ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]})") from exc
        self._db.marked = True

    @property
    def redacted(self) -> bool:
        """Whether a redact hook was ever applied to this store (in any process)."""
        if self._db.marked:
            return True
        from sqlalchemy import inspect, select

        meta = self._meta()
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(meta.c.key).where(meta.c.key == "redacted")).first() is not None
        except Exception:
            if inspect(self.engine).has_table("meta"):
                raise
            found = False  # an older store, never marked
        self._db.marked = found
        return found

    def _text(self, text: str | None) -> str | None:
        if text is None:
            return text
        hook = self.redact
        if hook is None:
            if self.redacted:
                raise StoreError(f"the traffic store {self.url!r} holds redacted text (a redact hook was applied "
                                 "to its captured text), and this store has no hook, so it refuses to write raw "
                                 "text: open it with the same hook (TrafficStore(..., redact=...) or "
                                 "TrafficCapture(..., redact=...))")
            return text
        out = hook(text)
        if not isinstance(out, str):
            raise StoreError(f"the redact hook returned a {type(out).__name__}, not a str")
        return out

    # ------------------------------------------------------------------ writing
    def add_call(self, call_id: str, *, query: str, decision: Any, record: Any = None,
                 source: str = "") -> None:
        """Store one routed call: its query, its :class:`~routellm_core.routing.Decision`, and
        the cost record of its answer (``None`` while unknown)."""
        _check_id(call_id)
        row = {
            "call_id": str(call_id), "created_at": time.time(), "source": source, "query": self._text(query),
            "route": decision.route, "model": decision.model, "strong_model": decision.strong_model,
            "weak_model": decision.weak_model, "router": decision.router, "rule": decision.rule,
            "win_rate": _float(decision.win_rate), "threshold": _float(decision.threshold),
            "router_failed": bool(decision.router_failed),
            "decision": json.dumps(decision.as_metadata(), default=str),
        }
        if record is not None:
            row.update(input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                       tokens_estimated=record.tokens_estimated, cost=_float(record.cost),
                       failed=bool(record.failed), model=record.model, route=record.route)
        with self.engine.begin() as conn:
            conn.execute(self.tables["calls"].delete().where(self.tables["calls"].c.call_id == row["call_id"]))
            conn.execute(self.tables["calls"].insert().values(**row))

    def add_battle(self, *, query: str, model_a: str, model_b: str, winner: str | None, source: str,
                   judge: str = "", judge_prompt: str = "", verdict_first: str | None = None,
                   verdict_second: str | None = None, answer_a: str | None = None, answer_b: str | None = None,
                   cost_a: Any = None, cost_b: Any = None, cost_judge: Any = None,
                   call_id: str | None = None) -> bool:
        """Store one labelled battle (``winner`` ``"a"`` / ``"b"`` / ``"tie"``, or ``None`` for
        an unparsable verdict); ``False`` when the same battle is stored already."""
        from sqlalchemy.exc import IntegrityError

        if winner not in ("a", "b", "tie", None):
            raise StoreError(f"winner must be 'a', 'b', 'tie' or None (unparsable), got {winner!r}")
        query = self._text(query) or ""
        row = {"key": battle_key(query, model_a, model_b, judge, judge_prompt), "created_at": time.time(),
               "query": query, "model_a": model_a, "model_b": model_b, "winner": winner, "source": source,
               "judge": judge, "judge_prompt": judge_prompt, "verdict_first": verdict_first,
               "verdict_second": verdict_second, "answer_a": self._text(answer_a),
               "answer_b": self._text(answer_b), "cost_a": _float(cost_a), "cost_b": _float(cost_b),
               "cost_judge": _float(cost_judge), "call_id": call_id}
        try:
            with self.engine.begin() as conn:
                conn.execute(self.tables["battles"].insert().values(**row))
        except IntegrityError:
            return False
        return True

    def rate(self, call_id: str, rating: str | float, *, comment: str | None = None) -> None:
        """Attach a rating to a routed call: ``"up"`` / ``"down"`` or a score in [0, 1].

        Raises:
            StoreError: an unknown label or a score out of range; a call id that is empty, longer
                than 64 characters or names no captured call; a comment over 10,000 characters.
        """
        if isinstance(rating, str):
            if rating not in RATINGS:
                raise StoreError(f"rating must be one of {sorted(RATINGS)} or a score in [0, 1], got {rating!r}")
            label, score = rating, RATINGS[rating]
        else:
            score = float(rating)
            if not 0.0 <= score <= 1.0:
                raise StoreError(f"a rating score must be in [0, 1], got {rating!r}")
            label = None
        if not isinstance(call_id, str) or not call_id:
            raise StoreError(f"a rating needs the call's id (a non-empty str), got {call_id!r}")
        _check_id(call_id)
        if comment is not None and not isinstance(comment, str):
            raise StoreError(f"a rating's comment must be a str or None, got a {type(comment).__name__}")
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise StoreError(f"a rating's comment has at most {MAX_COMMENT_CHARS:,} characters, got {len(comment):,}")
        from sqlalchemy import select

        comment, calls = self._text(comment), self.tables["calls"]
        with self.engine.begin() as conn:
            if conn.execute(select(calls.c.call_id).where(calls.c.call_id == call_id)).first() is None:
                raise StoreError(f"no captured call with id {call_id!r} in the traffic store {self.url!r}: a rating "
                                 "names a call that capture= stored (the answer's routellm_call_id)")
            conn.execute(self.tables["feedback"].insert().values(
                call_id=call_id, created_at=time.time(), rating=score, label=label, comment=comment))

    # ------------------------------------------------------------------ reading
    def _frame(self, name: str) -> pd.DataFrame:
        from sqlalchemy import select

        table = self.tables[name]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in table.columns])

    def calls(self) -> pd.DataFrame:
        """Every captured call, with its latest rating (``rating`` / ``rating_label``, empty when unrated)."""
        calls = self._frame("calls")
        fb = self._frame("feedback").sort_values("id").drop_duplicates("call_id", keep="last")
        fb = fb[["call_id", "rating", "label"]].rename(columns={"label": "rating_label"})
        return calls.merge(fb, on="call_id", how="left")

    def call_queries(self) -> list[str]:
        """The distinct non-blank queries of the captured calls, in the order they were captured
        (what ``--prompts store:`` labels and calibrates on); only that column is read."""
        from sqlalchemy import select

        calls = self.tables["calls"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(calls.c.query).order_by(calls.c.created_at, calls.c.call_id)).scalars().all()
        return [q for q in dict.fromkeys(rows) if isinstance(q, str) and q.strip()]

    def battles(self) -> pd.DataFrame:
        """Every stored battle with its provenance (unparsable ones have no ``winner``)."""
        return self._frame("battles")

    def done_keys(self) -> set[str]:
        """Keys of the battles stored already (:func:`battle_key`); only that column is read.
        To test a few keys against a large store, :meth:`existing_keys` reads less."""
        from sqlalchemy import select

        battles = self.tables["battles"]
        with self.engine.connect() as conn:
            return set(conn.execute(select(battles.c.key)).scalars())

    def existing_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that name a stored battle, looked up by the key's unique index in
        chunks of :data:`PAGE_KEYS`: memory grows with ``keys``, never with the store."""
        from sqlalchemy import select

        battles, wanted = self.tables["battles"], list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), PAGE_KEYS):
                chunk = wanted[start:start + PAGE_KEYS]
                found.update(conn.execute(select(battles.c.key).where(battles.c.key.in_(chunk))).scalars())
        return found

    def iter_calls(self, columns: Sequence[str] = ("call_id", "query"), *, page: int = 5_000,
                   since: float | None = None) -> Iterator[pd.DataFrame]:
        """The captured calls in pages of at most ``page`` rows, oldest first, with only
        ``columns`` read: keyset pagination on ``(created_at, call_id)``, so one page costs the
        same however large the store is, and memory holds one page.

        Raises:
            ValueError: an unknown column, or ``page < 1``.
        """
        from sqlalchemy import and_, or_, select

        calls = self.tables["calls"]
        unknown = [c for c in columns if c not in calls.c]
        if unknown:
            raise ValueError(f"unknown calls column(s) {unknown}; the table has {list(calls.c.keys())}")
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValueError(f"page must be a whole number >= 1, got {page!r}")
        names = list(dict.fromkeys(["created_at", "call_id", *columns]))
        after: tuple[float, str] | None = None
        while True:
            query = select(*(calls.c[n] for n in names)).order_by(calls.c.created_at, calls.c.call_id).limit(page)
            if since is not None:
                query = query.where(calls.c.created_at >= since)
            if after is not None:
                query = query.where(or_(calls.c.created_at > after[0],
                                        and_(calls.c.created_at == after[0], calls.c.call_id > after[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            frame = pd.DataFrame([tuple(r) for r in rows], columns=names)
            after = (float(frame["created_at"].iloc[-1]), str(frame["call_id"].iloc[-1]))
            yield frame[list(columns)]
            if len(rows) < page:
                return

    def sample_queries(self, n: int, *, seed: int = 0, exclude: Container[str] = frozenset(),
                       page: int = 5_000) -> list[str]:
        """A uniform sample of at most ``n`` of the distinct non-blank captured queries (those
        in ``exclude`` left out), in a bounded pass over the store (:meth:`iter_calls`, pages of
        ``page``): the ``n`` queries whose seeded hash is smallest, in that order, so a query's
        chance does not depend on how often it was asked, the same store and seed give the same
        sample, and memory holds ``n`` queries whatever the store's size.

        Raises:
            ValueError: ``n < 1``.
        """
        import heapq

        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a whole number >= 1, got {n!r}")
        heap: list[tuple[int, str]] = []  # (-hash, query): the largest of the kept hashes on top
        kept: set[str] = set()
        for frame in self.iter_calls(("query",), page=page):
            for q in frame["query"]:
                if not isinstance(q, str) or not q.strip() or q in kept or q in exclude:
                    continue
                h = int.from_bytes(hashlib.sha256(f"{seed}\x00{q}".encode()).digest()[:8], "big")
                if len(heap) < n:
                    heapq.heappush(heap, (-h, q))
                    kept.add(q)
                elif h < -heap[0][0]:
                    _, out = heapq.heapreplace(heap, (-h, q))
                    kept.discard(out)
                    kept.add(q)
        return [q for _, q in sorted(heap, key=lambda e: -e[0])]

    def add_cycle_report(self, report: Mapping[str, Any]) -> None:
        """Store the report of one learning cycle (:class:`~routellm_core.learning.cycle.CycleReport`)."""
        with self.engine.begin() as conn:
            conn.execute(self.tables["learn_cycles"].insert().values(
                started_at=float(report["started_at"]), finished_at=report.get("finished_at"),
                status=str(report["status"]), version=report.get("version"),
                report=json.dumps(dict(report), default=float)))

    def cycle_reports(self, limit: int = 20) -> list[dict[str, Any]]:
        """The reports of the last ``limit`` learning cycles, the latest first."""
        from sqlalchemy import select

        table = self.tables["learn_cycles"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.report).order_by(table.c.id.desc()).limit(limit)).scalars().all()
        return [json.loads(r) for r in rows]

    def labelled_queries(self) -> set[str]:
        """The distinct queries that have a stored battle (judged or not); only that column is read."""
        from sqlalchemy import select

        battles = self.tables["battles"]
        with self.engine.connect() as conn:
            return set(conn.execute(select(battles.c.query).distinct()).scalars())

    def training_battles(self) -> pd.DataFrame:
        """Battles in the project's schema for training: judged ones with a winner, and the
        ones the ratings of weak calls give (see the module docstring). Only the columns and
        rows these need are read (never the stored answers, never unrated calls)."""
        from sqlalchemy import func, select

        battles, calls, feedback = self.tables["battles"], self.tables["calls"], self.tables["feedback"]
        latest = (select(feedback.c.call_id, func.max(feedback.c.id).label("id"))
                  .group_by(feedback.c.call_id).subquery())
        rated = (select(calls.c.query, calls.c.strong_model, calls.c.weak_model, feedback.c.rating)
                 .join(latest, latest.c.call_id == calls.c.call_id)
                 .join(feedback, feedback.c.id == latest.c.id)
                 .where(calls.c.route == "weak", calls.c.weak_model.is_not(None))
                 .order_by(calls.c.created_at, calls.c.call_id))
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(
                select(*(battles.c[n] for n in BATTLE_COLUMNS)).where(battles.c.winner.is_not(None))
                .order_by(battles.c.id)).mappings()]
            for r in conn.execute(rated).all():
                rows.append({"query": r.query, "model_a": r.strong_model, "model_b": r.weak_model,
                             "winner": "a" if r.rating < 0.5 else "tie", "source": "feedback"})
        return make_battles(rows) if rows else pd.DataFrame(columns=list(BATTLE_COLUMNS))

    def prune(self, older_than: float, *, now: float | None = None) -> dict[str, int]:
        """Retention: delete the captured calls older than ``older_than`` seconds that nothing
        learns from (no rating, no battle made from them), and drop the stored answers of older
        battles (their verdicts, costs and provenance stay: they are training data). Returns
        ``{"calls": deleted, "answers": battles whose answers were dropped}``.

        Example:
            >>> import tempfile, os
            >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
            >>> store.prune(30 * 86400)
            {'calls': 0, 'answers': 0}

        Raises:
            ValueError: ``older_than`` not a positive number of seconds.
        """
        from sqlalchemy import exists, or_, select

        if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or not 0 < older_than < math.inf:
            raise ValueError(f"older_than must be a positive number of seconds, got {older_than!r}")
        cutoff = (time.time() if now is None else now) - older_than
        calls, battles, feedback = self.tables["calls"], self.tables["battles"], self.tables["feedback"]
        with self.engine.begin() as conn:
            deleted = conn.execute(calls.delete().where(
                calls.c.created_at < cutoff,
                ~exists(select(feedback.c.id).where(feedback.c.call_id == calls.c.call_id)),
                ~exists(select(battles.c.id).where(battles.c.call_id == calls.c.call_id)))).rowcount
            dropped = conn.execute(battles.update().where(
                battles.c.created_at < cutoff,
                or_(battles.c.answer_a.is_not(None), battles.c.answer_b.is_not(None)))
                .values(answer_a=None, answer_b=None)).rowcount
        return {"calls": int(deleted or 0), "answers": int(dropped or 0)}

    # ------------------------------------------------------------------ labellers: writability and claims
    def _claims(self) -> Any:
        """The ``claims`` table: one row per prompt a labeller is paying for right now."""
        return self.tables["claims"]

    def check_writable(self, timeout: float = 2.0) -> None:
        """Make sure a battle could be written now, before anything is paid for: write a probe
        row into the ``claims`` table and delete it in one committed transaction, waiting at
        most ``timeout`` seconds for a lock another connection holds.

        Raises:
            StoreError: naming the store, when it is read-only, locked or otherwise unwritable.
        """
        probe, now, ms = f"probe-{uuid.uuid4().hex}", time.time(), max(1, int(timeout * 1000))
        try:
            with self.engine.connect() as conn:
                sqlite = conn.dialect.name == "sqlite"
                if sqlite:
                    previous = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {ms}")
                    conn.commit()
                try:
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                    claims = self._claims()
                    conn.execute(claims.insert().values(key=probe, owner=probe, created_at=now, expires_at=now))
                    conn.execute(claims.delete().where(claims.c.key == probe))
                    conn.commit()
                except Exception:
                    conn.rollback()
                    raise
                finally:
                    if sqlite:
                        conn.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")
                        conn.commit()
        except Exception as exc:
            raise StoreError(f"the traffic store {self.url!r} cannot be written ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}): is it read-only, or locked by another "
                             "process?") from exc

    def has_battle(self, key: str) -> bool:
        """Whether the battle with this :func:`battle_key` is stored."""
        from sqlalchemy import select

        battles = self.tables["battles"]
        with self.engine.connect() as conn:
            return conn.execute(select(battles.c.id).where(battles.c.key == key).limit(1)).first() is not None

    def claim(self, key: str, owner: str, ttl: float) -> bool:
        """Claim the battle ``key`` for labeller ``owner`` for ``ttl`` seconds, atomically;
        ``False`` when another labeller holds an unexpired claim or the battle is stored
        already. An expired claim (a labeller that died) is taken over; ``owner``'s own claim
        is renewed. Labellers claim a prompt right before paying for it, so two of them on one
        store never pay for the same prompt.
        """
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        if not ttl > 0:
            raise StoreError(f"a claim's ttl must be > 0 seconds, got {ttl!r}")
        claims, battles, now = self._claims(), self.tables["battles"], time.time()
        try:
            with self.engine.begin() as conn:  # the write comes first: SQLite takes its write lock here
                conn.execute(claims.delete().where(claims.c.key == key)
                             .where((claims.c.expires_at <= now) | (claims.c.owner == owner)))
                if conn.execute(select(battles.c.id).where(battles.c.key == key).limit(1)).first() is not None:
                    return False
                conn.execute(claims.insert().values(key=key, owner=owner, created_at=now, expires_at=now + ttl))
        except IntegrityError:  # an unexpired claim of another labeller
            return False
        return True

    def release(self, key: str, owner: str) -> None:
        """Drop ``owner``'s claim on ``key`` (another labeller's claim is left alone)."""
        claims = self._claims()
        with self.engine.begin() as conn:
            conn.execute(claims.delete().where(claims.c.key == key).where(claims.c.owner == owner))

    # ------------------------------------------------------------------ router versions
    @contextlib.contextmanager
    def _versions_transaction(self) -> Iterator[Any]:
        """One transaction that no other publish / rollback of this database runs beside (a
        PostgreSQL advisory lock; SQLite's write lock, ``BEGIN IMMEDIATE``); committed at the end."""
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                try:
                    if conn.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _VERSIONS_LOCK})
                    elif conn.dialect.name == "sqlite":
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    yield conn
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
        except IntegrityError:
            raise  # publish_router retries it
        except SQLAlchemyError as exc:
            raise StoreError(f"the traffic store {self.url!r} cannot record router versions now "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): is it read-only, "
                             "locked or unreachable?") from exc

    def publish_router(self, location: str, *, sha256: str, figures: Mapping[str, Any] | None = None,
                       by: str | None = None, note: str | None = None) -> RouterVersion:
        """Publish the checkpoint at ``location`` as the store's next router version, which is
        live from now on: every ``RouterFromStore`` of this store (the adapters of each replica)
        loads it at its next poll. Earlier versions are kept for :meth:`rollback`.

        Safe from several processes at once: each publish gets a version number of its own, one
        more than the highest so far (one transaction under a lock).

        Args:
            location: an absolute checkpoint directory on storage every replica reads, or
                ``"hf://org/name"`` (``"hf://org/name@revision"`` pins a revision). Leave what
                it holds unchanged: a replica refuses a checkpoint whose digest changed.
            sha256: the checkpoint's digest
                (:func:`~routellm_core.routing.follow.checkpoint_sha256`).
            figures: the promotion's comparison figures (a JSON object).
            by: who publishes it (``routellm promote --publish`` records the OS user).
            note: free text.

        Raises:
            StoreError: a location that is relative or malformed, a digest that is not 64 hex
                characters, figures that are not a JSON object, a ``by`` or ``note`` too long.

        Example:
            >>> import os, tempfile
            >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
            >>> store.publish_router("/srv/routers/v1", sha256="0" * 64, by="ops").version
            1
            >>> store.live_router().location
            '/srv/routers/v1'
        """
        from sqlalchemy import func, select
        from sqlalchemy.exc import IntegrityError

        location = _check_location(location)
        digest = sha256.lower() if isinstance(sha256, str) else sha256
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise StoreError(f"sha256 must be the checkpoint's digest, 64 hex characters, got {sha256!r:.80}")
        if figures is not None and not isinstance(figures, Mapping):
            raise StoreError(f"figures must be a mapping (a JSON object) or None, got a {type(figures).__name__}")
        try:
            figures_json = json.dumps(dict(figures or {}), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"figures must be JSON-serialisable: {exc}") from None
        by, note = _check_who(by, "by", 200), _check_who(note, "a note", MAX_COMMENT_CHARS)
        table = self.tables["router_versions"]
        for attempt in range(5):  # a database without such a lock: two publishes may pick one number
            try:
                with self._versions_transaction() as conn:
                    last = conn.execute(select(func.max(table.c.version))).scalar()
                    row = {"version": int(last or 0) + 1, "created_at": time.time(), "location": location,
                           "sha256": digest, "figures": figures_json, "published_by": by, "note": note,
                           "rolled_back_at": None, "rolled_back_by": None}
                    conn.execute(table.insert().values(**row))
                return RouterVersion._of(row)
            except IntegrityError:
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _versions(self, conn: Any, *, live_only: bool) -> list[RouterVersion]:
        """The versions, the latest first (``live_only``: the two latest not rolled back)."""
        from sqlalchemy import inspect, select

        table = self.tables["router_versions"]
        query = select(table).order_by(table.c.version.desc())
        if live_only:
            query = query.where(table.c.rolled_back_at.is_(None)).limit(2)
        try:
            rows = conn.execute(query).mappings().all()
        except Exception:
            conn.rollback()
            if inspect(conn).has_table("router_versions"):
                raise
            return []  # an older store opened read-only, never migrated: nothing was published
        return [RouterVersion._of(r) for r in rows]

    def live_router(self) -> RouterVersion | None:
        """The live router version: the latest one not rolled back; ``None`` when there is none."""
        with self.engine.connect() as conn:
            found = self._versions(conn, live_only=True)
        return found[0] if found else None

    def router_versions(self) -> list[RouterVersion]:
        """Every published router version, the first one first (rolled-back ones included)."""
        with self.engine.connect() as conn:
            return self._versions(conn, live_only=False)[::-1]

    def rollback(self, by: str | None = None) -> RouterVersion:
        """Roll back the live router version: mark it rolled back (it is never live again) and
        return the version live now, the latest earlier one not rolled back. Followers
        (``RouterFromStore``) load that one at their next poll.

        Raises:
            StoreError: no version is live, or the live one is the only one left (nothing to
                roll back to; nothing is changed then).

        Example:
            >>> import os, tempfile
            >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
            >>> _ = store.publish_router("/srv/routers/v1", sha256="1" * 64)
            >>> _ = store.publish_router("/srv/routers/v2", sha256="2" * 64)
            >>> store.rollback(by="ops").version
            1
        """
        by = _check_who(by, "by", 200)
        table = self.tables["router_versions"]
        with self._versions_transaction() as conn:
            live = self._versions(conn, live_only=True)
            if not live:
                raise StoreError(f"the traffic store {self.url!r} has no live router version to roll back: "
                                 "publish one first (routellm promote ... --publish STORE)")
            if len(live) < 2:
                raise StoreError(f"router version {live[0].version} is the only live one in the traffic store "
                                 f"{self.url!r}: there is no earlier version to roll back to")
            conn.execute(table.update().where(table.c.version == live[0].version)
                         .values(rolled_back_at=time.time(), rolled_back_by=by))
        return live[1]

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"TrafficStore({self.url!r})"


class _WriteQueue:
    """What a writer's thread holds: the queue and its counts, not the :class:`BackgroundWriter`,
    so that a writer nobody holds is collected, and its thread ends once its queue is drained."""

    def __init__(self, maxsize: int, exit_timeout: float) -> None:
        self.queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=maxsize)
        self.exit_timeout = exit_timeout
        self.dropped = self.errors = 0
        self.busy = self.closed = False
        self.warned: set[str] = set()

    def run(self) -> None:
        while True:
            write = self.queue.get()
            try:
                if write is not None:
                    self.busy = True
                    write()
            except Exception as exc:  # a store error never reaches the user's call
                self.errors += 1
                self.warn(type(exc).__name__, f"a traffic store write failed ({type(exc).__name__}: "
                                              f"{str(exc)[:200]}); {self.errors} failed so far")
            finally:
                self.busy = False
                self.queue.task_done()
            if self.closed and self.queue.empty():  # stop() sets `closed` before it queues None
                return

    def warn(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            logger.warning(message)

    def pending(self) -> int:
        """Writes queued or running now."""
        with self.queue.mutex:
            queued = sum(1 for w in self.queue.queue if w is not None)
        return queued + self.busy

    def stop(self) -> None:
        """End the thread once every queued write ran (no new write is taken)."""
        self.closed = True
        try:
            self.queue.put_nowait(None)  # wakes the thread if it waits on an empty queue
        except queue.Full:  # it does not: it sees `closed` once the queue is drained
            pass


_LIVE: weakref.WeakSet[_WriteQueue] = weakref.WeakSet()  # queues whose thread still runs


def _flush_at_exit() -> None:
    """At interpreter exit: wait (each writer's ``exit_timeout`` at most, all at once) for the
    queued writes, and say on stderr how many could not be written in time."""
    queues = [q for q in list(_LIVE) if q.queue.unfinished_tasks]
    if not queues:
        return
    start, lost = time.monotonic(), 0
    for q in queues:
        while q.queue.unfinished_tasks and time.monotonic() - start < q.exit_timeout:
            time.sleep(0.005)
        lost += q.pending()
    if lost:
        waited = max(q.exit_timeout for q in queues)
        message = (f"routellm: {lost} traffic store write(s) still queued at exit were not written within "
                   f"{waited:g} s and are lost; call TrafficCapture.flush() or close() before exiting, or give "
                   "TrafficCapture(exit_timeout=...) more time")
        if logger.hasHandlers():
            logger.warning(message)
        else:
            print(message, file=sys.stderr, flush=True)


atexit.register(_flush_at_exit)


class BackgroundWriter:
    """Runs store writes on one daemon thread, off the caller's path.

    ``submit`` never blocks: when the queue is full the write is dropped and counted (and
    warned about once); a write that raises is logged as a warning (once per error type) and
    counted. ``flush`` waits for the queue to drain; ``close`` flushes and ends the thread.

    Nothing queued is lost silently: at interpreter exit the process waits up to
    ``exit_timeout`` seconds for queued writes, and writes that could not be written in that
    time are counted in a warning on stderr. A writer nobody holds is collected; its thread ends
    once its queue is drained.

    Args:
        maxsize: writes that may wait; beyond it a write is dropped and counted.
        exit_timeout: seconds to wait at exit for queued writes (default 10).
    """

    def __init__(self, maxsize: int = 10_000, *, exit_timeout: float = EXIT_TIMEOUT) -> None:
        if isinstance(exit_timeout, bool) or not isinstance(exit_timeout, (int, float)) or not exit_timeout >= 0:
            raise ValueError(f"exit_timeout must be a number of seconds >= 0, got {exit_timeout!r}")
        self._q = _WriteQueue(maxsize, float(exit_timeout))
        self.queue = self._q.queue
        self._thread = threading.Thread(target=self._q.run, name="routellm-store-writer", daemon=True)
        self._thread.start()
        _LIVE.add(self._q)
        weakref.finalize(self, _WriteQueue.stop, self._q).atexit = False

    @property
    def dropped(self) -> int:
        """Writes dropped: the queue was full, or the writer was closed."""
        return self._q.dropped

    @property
    def errors(self) -> int:
        """Writes that raised (each logged once per error type)."""
        return self._q.errors

    @property
    def exit_timeout(self) -> float:
        """Seconds to wait at exit for the queued writes."""
        return self._q.exit_timeout

    @property
    def closed(self) -> bool:
        return self._q.closed

    def submit(self, write: Callable[[], Any]) -> bool:
        """Queue ``write``; ``False`` when the queue was full or the writer closed, and it was dropped."""
        if self._q.closed:
            self._q.dropped += 1
            self._q.warn("closed", f"a traffic store write came after close() and was dropped; "
                                   f"{self._q.dropped} dropped so far")
            return False
        try:
            self.queue.put_nowait(write)
            return True
        except queue.Full:
            self._q.dropped += 1
            self._q.warn("queue-full", f"the traffic store is behind: {self._q.dropped} write(s) dropped so far "
                                       f"(queue of {self.queue.maxsize})")
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write ran; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (``timeout`` seconds at most), then end the thread; later writes are dropped.
        ``False`` when writes were still queued (they still run, and exit waits for them)."""
        done = self.flush(timeout)
        self._q.stop()
        if done:
            self._thread.join(timeout)
        return done


def open_store(spec: Any, *, redact: Redact | None = None, must_exist: bool = False) -> TrafficStore:
    """A store from ``"store:PATH_OR_URL"``, a path, a URL, or a store (returned as is).

    One database, one store object: the store this process opened already for the same database
    is returned (so every writer shares its ``redact`` hook), else a new one.

    Args:
        redact: the store's redact hook (a different hook set already is a :class:`StoreError`).
        must_exist: for reading: a store that does not exist is a :class:`StoreError` (and a
            SQLite file is not created).
    """
    if isinstance(spec, TrafficStore):
        if redact is not None:
            spec.redact = redact
        return spec
    try:
        text = os.fspath(spec)
    except TypeError:
        raise TypeError(f"a traffic store is a path, a SQLAlchemy URL or 'store:PATH_OR_URL', "
                        f"got a {type(spec).__name__}") from None
    if text.startswith("store:"):
        text = text[len("store:"):]
    if not text:
        raise StoreError("store: needs a file path or a SQLAlchemy URL")
    try:
        url = _url(text)
    except Exception as exc:
        raise StoreError(f"cannot open the traffic store {text!r}: it is neither a file path nor a SQLAlchemy URL "
                         f"({type(exc).__name__}: {exc})") from exc
    key = _database_key(url)
    with _LOCK:
        store = None if key is None else _OPEN.get(key)
        if store is None:
            return TrafficStore(url, redact=redact, must_exist=must_exist)
    file = _sqlite_file(url)
    if must_exist and file is not None and not Path(file).is_file():
        raise StoreError(f"the traffic store {store.url!r} does not exist (no file {file!r})")
    if redact is not None:
        store.redact = redact
    return store


__all__ = ["BackgroundWriter", "RATINGS", "RouterVersion", "SCHEMA_VERSION", "StoreError", "TrafficStore",
           "battle_key", "open_store"]
