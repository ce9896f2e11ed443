"""Labellers' claims on a traffic store: a prompt is paid for by one labeller only.

:class:`LabellerClaims` holds the :class:`~routellm_core.store.TrafficStore` methods labellers
call before paying for a battle: whether the store can be written now, whether a battle is
stored, and a claim on it that expires.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from routellm_core.errors import StoreError

__all__ = ["LabellerClaims"]


class LabellerClaims:
    """Writability and claims of a :class:`~routellm_core.store.TrafficStore` (a part of that class)."""

    url: str
    engine: Any
    tables: dict[str, Any]

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
