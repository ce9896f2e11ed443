"""The :class:`TrafficStore`: calls, battles and feedback in one SQL database, and :func:`open_store`.

One redaction hook per database in a process: every store of one database shares it, and
:func:`open_store` returns the store this process opened already (see the package docstring,
:mod:`routellm_core.store`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from routellm_core.battles import BATTLE_COLUMNS, make_battles
from routellm_core.errors import StoreError
from routellm_core.store.claims import LabellerClaims
from routellm_core.store.paging import PagedReads
from routellm_core.store.schema import MAX_COMMENT_CHARS, MAX_ID_CHARS, define_tables, migrate, optional_float
from routellm_core.store.urls import database_key, sqlite_file, store_url
from routellm_core.store.versions import RouterVersions

__all__ = ["RATINGS", "Redact", "TrafficStore", "battle_key", "open_store"]

Redact = Callable[[str], str]
RATINGS: dict[str, float] = {"up": 1.0, "down": 0.0}


def battle_key(query: str, model_a: str, model_b: str, judge: str, prompt: str) -> str:
    """What makes a labelled battle the same one again (used to resume labelling)."""
    raw = json.dumps([query, model_a, model_b, judge, prompt], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class _Database:
    """What every :class:`TrafficStore` of one database shares in this process: the redact hook,
    and whether the store is known to be marked redacted."""

    def __init__(self) -> None:
        self.redact: Redact | None = None
        self.marked = False


_LOCK = threading.RLock()
_DATABASES: dict[str, _Database] = {}                                  # the normalised URL -> its state
_OPEN: weakref.WeakValueDictionary[str, TrafficStore] = weakref.WeakValueDictionary()  # what open_store reuses


def _hook_name(hook: Any) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__name__


def _check_id(call_id: Any) -> None:
    text = str(call_id)
    if len(text) > MAX_ID_CHARS:
        raise StoreError(f"a call id has at most {MAX_ID_CHARS} characters, got {len(text):,}: {text[:40]!r}...")


class TrafficStore(PagedReads, LabellerClaims, RouterVersions):
    """Calls, battles and feedback in a SQL database (see :mod:`routellm_core.store`).

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
            url = store_url(target)
        except Exception as exc:
            raise StoreError(f"cannot open the traffic store {str(target)!r}: it is neither a file path nor a "
                             f"SQLAlchemy URL ({type(exc).__name__}: {exc})") from exc
        self.url: str = url.render_as_string(hide_password=True)
        key = database_key(url)
        file = sqlite_file(url)
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
            self.tables = define_tables(self.metadata)
            migrate(self.engine, self.url, self.tables)
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
            "win_rate": optional_float(decision.win_rate), "threshold": optional_float(decision.threshold),
            "router_failed": bool(decision.router_failed),
            "decision": json.dumps(decision.as_metadata(), default=str),
        }
        if record is not None:
            row.update(input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                       tokens_estimated=record.tokens_estimated, cost=optional_float(record.cost),
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
               "answer_b": self._text(answer_b), "cost_a": optional_float(cost_a), "cost_b": optional_float(cost_b),
               "cost_judge": optional_float(cost_judge), "call_id": call_id}
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

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"TrafficStore({self.url!r})"


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
        url = store_url(text)
    except Exception as exc:
        raise StoreError(f"cannot open the traffic store {text!r}: it is neither a file path nor a SQLAlchemy URL "
                         f"({type(exc).__name__}: {exc})") from exc
    key = database_key(url)
    with _LOCK:
        store = None if key is None else _OPEN.get(key)
        if store is None:
            return TrafficStore(url, redact=redact, must_exist=must_exist)
    file = sqlite_file(url)
    if must_exist and file is not None and not Path(file).is_file():
        raise StoreError(f"the traffic store {store.url!r} does not exist (no file {file!r})")
    if redact is not None:
        store.redact = redact
    return store
