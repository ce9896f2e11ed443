"""Where a traffic store is: a file path or a SQLAlchemy URL, normalised so one database has one URL.

Example:
    >>> store_url("sqlite:////srv/traffic.db").database
    '/srv/traffic.db'
    >>> sqlite_file(store_url("postgresql+psycopg://app@db/routellm")) is None
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["database_key", "sqlite_file", "store_url"]


def store_url(target: Any) -> Any:
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
    file = sqlite_file(url)
    if file is not None and not Path(file).is_absolute():
        url = url.set(database=str(Path(file).expanduser().resolve()))
    return url


def sqlite_file(url: Any) -> str | None:
    """The file of a SQLite URL; ``None`` for another database, an in-memory one or a ``file:`` URI."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return url.database


def database_key(url: Any) -> str | None:
    """The registry key of a database: its full URL; ``None`` for in-memory SQLite, where every
    engine has a database of its own."""
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)
