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

The package sits below the data loaders (``store:PATH`` data specs read it) and the learning
loop, and imports neither. Its modules: :mod:`~routellm_core.store.schema` (the tables and their
migrations), :mod:`~routellm_core.store.urls` (paths and URLs), :mod:`~routellm_core.store.traffic`
(:class:`TrafficStore`, :func:`open_store`), :mod:`~routellm_core.store.paging` (bounded reads),
:mod:`~routellm_core.store.claims` (labellers' claims), :mod:`~routellm_core.store.versions`
(router versions) and :mod:`~routellm_core.store.writer` (:class:`BackgroundWriter`).

Example:
    >>> import tempfile, os
    >>> from routellm_core.store import TrafficStore
    >>> store = TrafficStore(os.path.join(tempfile.mkdtemp(), "traffic.db"))
    >>> store.add_battle(query="2+2?", model_a="big", model_b="small", winner="tie", source="doc")
    True
    >>> store.training_battles()[["query", "winner"]].values.tolist()
    [['2+2?', 'tie']]
"""

from routellm_core.errors import StoreError
from routellm_core.store.paging import PAGE_KEYS
from routellm_core.store.schema import MAX_COMMENT_CHARS, MAX_ID_CHARS, MIGRATIONS, SCHEMA_VERSION
from routellm_core.store.traffic import RATINGS, Redact, TrafficStore, battle_key, open_store
from routellm_core.store.versions import MAX_LOCATION_CHARS, RouterVersion
from routellm_core.store.writer import EXIT_TIMEOUT, BackgroundWriter

__all__ = [
    "BackgroundWriter",
    "EXIT_TIMEOUT",
    "MAX_COMMENT_CHARS",
    "MAX_ID_CHARS",
    "MAX_LOCATION_CHARS",
    "MIGRATIONS",
    "PAGE_KEYS",
    "RATINGS",
    "Redact",
    "RouterVersion",
    "SCHEMA_VERSION",
    "StoreError",
    "TrafficStore",
    "battle_key",
    "open_store",
]
