"""The traffic store: routed calls, labelled battles and user feedback in one SQL database.

A SQLite file by default (give a path); any SQLAlchemy URL otherwise (``postgresql+psycopg://...``).
Three tables:

- ``calls``: each routed call the adapters captured (opt-in): the query text (after the
  ``redact`` hook), the decision, the chosen model, tokens and cost;
- ``battles``: labelled comparisons in the project's schema (``query, model_a, model_b,
  winner, source``) with provenance: the judge, its prompt, both verdicts, both answers, costs,
  the time; ``winner`` is empty for an unparsable verdict (kept, never used for training);
- ``feedback``: ratings attached to a call id (thumbs up / down or a score).

:meth:`TrafficStore.training_battles` is what ``routellm train store:PATH`` reads: the judged
battles, plus one battle per rated weak call (a "down" on a weak call says the strong model was
needed: the strong model wins; an "up" says the weak answer was good enough: a tie). Ratings of
strong calls say nothing about the weak model and give no battle.

Writes from live calls go through a :class:`BackgroundWriter`: off the call path, never
blocking it; a store error is a warning, counted, never the user's exception.

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

import hashlib
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from routellm_core.data.schema import BATTLE_COLUMNS, make_battles

logger = logging.getLogger("routellm_core.learning")
Redact = Callable[[str], str]
RATINGS: dict[str, float] = {"up": 1.0, "down": 0.0}


class StoreError(RuntimeError):
    """The traffic store cannot be opened, or a value given to it is invalid."""


def battle_key(query: str, model_a: str, model_b: str, judge: str, prompt: str) -> str:
    """What makes a labelled battle the same one again (used to resume labelling)."""
    raw = json.dumps([query, model_a, model_b, judge, prompt], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _tables(metadata: Any) -> dict[str, Any]:
    from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text

    return {
        "calls": Table(
            "calls", metadata,
            Column("call_id", String(64), primary_key=True), Column("created_at", Float, nullable=False),
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
            Column("call_id", String(64))),
        "feedback": Table(
            "feedback", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("call_id", String(64), nullable=False, index=True), Column("created_at", Float, nullable=False),
            Column("rating", Float, nullable=False), Column("label", String(16)), Column("comment", Text)),
    }


def _url(target: str | os.PathLike[str]) -> str:
    text = os.fspath(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _float(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f


class TrafficStore:
    """Calls, battles and feedback in a SQL database (see the module docstring).

    Args:
        target: a file path (SQLite) or a SQLAlchemy URL.
        redact: runs on every query and answer text before it is stored (e.g. masking emails).

    Raises:
        StoreError: the database cannot be opened or its tables created.
    """

    def __init__(self, target: str | os.PathLike[str], *, redact: Redact | None = None) -> None:
        from sqlalchemy import MetaData, create_engine

        self.url = _url(target)
        self.redact = redact
        try:
            self.engine = create_engine(self.url, future=True)
            self.metadata = MetaData()
            self.tables = _tables(self.metadata)
            self.metadata.create_all(self.engine)
        except Exception as exc:
            raise StoreError(f"cannot open the traffic store {self.url!r}: {type(exc).__name__}: {exc}") from exc

    def _text(self, text: str | None) -> str | None:
        if text is None or self.redact is None:
            return text
        out = self.redact(text)
        if not isinstance(out, str):
            raise StoreError(f"the redact hook returned a {type(out).__name__}, not a str")
        return out

    # ------------------------------------------------------------------ writing
    def add_call(self, call_id: str, *, query: str, decision: Any, record: Any = None,
                 source: str = "") -> None:
        """Store one routed call: its query, its :class:`~routellm_core.routing.Decision`, and
        the cost record of its answer (``None`` while unknown)."""
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
            StoreError: an unknown label or a score out of range.
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
        with self.engine.begin() as conn:
            conn.execute(self.tables["feedback"].insert().values(
                call_id=call_id, created_at=time.time(), rating=score, label=label, comment=self._text(comment)))

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

    def battles(self) -> pd.DataFrame:
        """Every stored battle with its provenance (unparsable ones have no ``winner``)."""
        return self._frame("battles")

    def done_keys(self) -> set[str]:
        """Keys of the battles stored already (:func:`battle_key`)."""
        return set(self._frame("battles")["key"])

    def training_battles(self) -> pd.DataFrame:
        """Battles in the project's schema for training: judged ones with a winner, and the
        ones the ratings of weak calls give (see the module docstring)."""
        judged = self.battles()
        judged = judged[judged["winner"].notna()]
        rows = judged[list(BATTLE_COLUMNS)].to_dict("records")
        calls = self.calls()
        rated = calls[calls["rating"].notna() & (calls["route"] == "weak") & calls["weak_model"].notna()]
        for r in rated.itertuples():
            winner = "a" if r.rating < 0.5 else "tie"
            rows.append({"query": r.query, "model_a": r.strong_model, "model_b": r.weak_model,
                         "winner": winner, "source": "feedback"})
        return make_battles(rows) if rows else pd.DataFrame(columns=list(BATTLE_COLUMNS))

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"TrafficStore({self.url!r})"


class BackgroundWriter:
    """Runs store writes on one daemon thread, off the caller's path.

    ``submit`` never blocks: when the queue is full the write is dropped and counted (and
    warned about once); a write that raises is logged as a warning (once per error type) and
    counted. ``flush`` waits for the queue to drain.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        self.queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.errors = 0
        self._warned: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="routellm-store-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Callable[[], Any]) -> bool:
        """Queue ``write``; ``False`` when the queue was full and it was dropped."""
        try:
            self.queue.put_nowait(write)
            return True
        except queue.Full:
            self.dropped += 1
            self._warn("queue-full", f"the traffic store is behind: {self.dropped} write(s) dropped so far "
                                     f"(queue of {self.queue.maxsize})")
            return False

    def _run(self) -> None:
        while True:
            write = self.queue.get()
            try:
                if write is None:
                    return
                write()
            except Exception as exc:  # a store error never reaches the user's call
                self.errors += 1
                self._warn(type(exc).__name__, f"a traffic store write failed ({type(exc).__name__}: "
                                               f"{str(exc)[:200]}); {self.errors} failed so far")
            finally:
                self.queue.task_done()

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write ran; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True


def open_store(spec: str | os.PathLike[str] | TrafficStore, *, redact: Redact | None = None) -> TrafficStore:
    """A store from ``"store:PATH_OR_URL"``, a path, a URL, or a store (returned as is)."""
    if isinstance(spec, TrafficStore):
        return spec
    text = os.fspath(spec)
    if text.startswith("store:"):
        text = text[len("store:"):]
    if not text:
        raise StoreError("store: needs a file path or a SQLAlchemy URL")
    return TrafficStore(text, redact=redact)


__all__ = ["BackgroundWriter", "RATINGS", "StoreError", "TrafficStore", "battle_key", "open_store"]
