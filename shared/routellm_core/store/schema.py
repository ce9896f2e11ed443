"""The traffic store's tables, and the migrations that create or upgrade them in place.

:data:`SCHEMA_VERSION` is the version this code writes and reads; :func:`migrate` brings a
store to it (one process at a time), and refuses a store newer than this code.

Example:
    >>> from sqlalchemy import MetaData
    >>> sorted(define_tables(MetaData()))
    ['battles', 'calls', 'claims', 'feedback', 'learn_cycles', 'meta', 'router_versions']
    >>> [version for version, _ in MIGRATIONS][-1] == SCHEMA_VERSION
    True
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from routellm_core.errors import StoreError

__all__ = ["MAX_COMMENT_CHARS", "MAX_ID_CHARS", "MIGRATIONS", "SCHEMA_VERSION", "define_tables", "migrate",
           "optional_float"]

# The learning loop's logger: users and tests filter the store's warnings under this name.
logger = logging.getLogger("routellm_core.learning")
MAX_ID_CHARS = 64          # the call_id columns are String(64)
MAX_COMMENT_CHARS = 10_000  # a rating's comment, a router version's note


def define_tables(metadata: Any) -> dict[str, Any]:
    """The store's tables, by name, defined on ``metadata`` (SQLAlchemy ``Table`` objects)."""
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


SCHEMA_VERSION = 3
"""The schema version this code writes and reads (see :data:`MIGRATIONS`); recorded in the
``meta`` table as ``schema_version``. A store with a newer version is refused."""
SCHEMA_LOCK = 0x726F_7574_656C_6C6D  # "routellm": the PostgreSQL advisory lock taken around migrations


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


def schema_version(conn: Any, tables: dict[str, Any]) -> int:
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


def migrate(engine: Any, url: str, tables: dict[str, Any], attempts: int = 5) -> None:
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
            version = schema_version(conn, tables)
            conn.rollback()
            _check_version(url, version)
            if version == SCHEMA_VERSION:
                return
            try:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                elif conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                version = schema_version(conn, tables)  # under the lock: another process may have migrated
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


def optional_float(value: Any) -> float | None:
    """``value`` as a float for a nullable column: ``None`` for ``None`` and NaN."""
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f
