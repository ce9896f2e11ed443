"""Router versions: the routers published in a traffic store for every replica to follow.

:class:`RouterVersion` is one row of the ``router_versions`` table; :class:`RouterVersions` holds
the :class:`~routellm_core.store.TrafficStore` methods that publish, list and roll them back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from routellm_core.errors import StoreError
from routellm_core.store.schema import MAX_COMMENT_CHARS, SCHEMA_LOCK, optional_float

__all__ = ["MAX_LOCATION_CHARS", "RouterVersion", "RouterVersions", "check_location", "check_who"]

MAX_LOCATION_CHARS = 4096  # a router version's location
_VERSIONS_LOCK = SCHEMA_LOCK + 1  # the PostgreSQL advisory lock taken around publish / rollback
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RouterVersion:
    """One published router in the store's ``router_versions`` table (see
    :meth:`~routellm_core.store.TrafficStore.publish_router`).

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
                   published_by=row["published_by"], note=row["note"],
                   rolled_back_at=optional_float(row["rolled_back_at"]), rolled_back_by=row["rolled_back_by"])



def check_location(location: Any) -> str:
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


def check_who(value: Any, what: str, limit: int) -> str | None:
    """``value`` if it is ``None`` or a str of at most ``limit`` characters, else :class:`StoreError`
    (``what`` names the value in the message)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a str or None, got a {type(value).__name__}")
    if len(value) > limit:
        raise StoreError(f"{what} has at most {limit:,} characters, got {len(value):,}")
    return value


class RouterVersions:
    """The router versions of a :class:`~routellm_core.store.TrafficStore` (a part of that class)."""

    url: str
    engine: Any
    tables: dict[str, Any]

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
            >>> from routellm_core.store import TrafficStore
            >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
            >>> store.publish_router("/srv/routers/v1", sha256="0" * 64, by="ops").version
            1
            >>> store.live_router().location
            '/srv/routers/v1'
        """
        from sqlalchemy import func, select
        from sqlalchemy.exc import IntegrityError

        location = check_location(location)
        digest = sha256.lower() if isinstance(sha256, str) else sha256
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise StoreError(f"sha256 must be the checkpoint's digest, 64 hex characters, got {sha256!r:.80}")
        if figures is not None and not isinstance(figures, Mapping):
            raise StoreError(f"figures must be a mapping (a JSON object) or None, got a {type(figures).__name__}")
        try:
            figures_json = json.dumps(dict(figures or {}), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"figures must be JSON-serialisable: {exc}") from None
        by, note = check_who(by, "by", 200), check_who(note, "a note", MAX_COMMENT_CHARS)
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
            >>> from routellm_core.store import TrafficStore
            >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "t.db"))
            >>> _ = store.publish_router("/srv/routers/v1", sha256="1" * 64)
            >>> _ = store.publish_router("/srv/routers/v2", sha256="2" * 64)
            >>> store.rollback(by="ops").version
            1
        """
        by = check_who(by, "by", 200)
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
