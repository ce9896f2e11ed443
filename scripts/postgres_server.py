"""Start and stop a throwaway PostgreSQL server for the tests (CI and a local pytest run).

    python scripts/postgres_server.py start      # prints shell `export` lines: the URL and the data dir
    python scripts/postgres_server.py stop DIR   # stops the server of DIR and deletes DIR

The server runs from a new data directory in the temporary directory (``initdb -A trust``,
superuser ``postgres``), listens on 127.0.0.1 on a free port only, with its socket in the data
directory; ``fsync`` is off (a test server, never data to keep). Run as root, ``initdb`` and
``pg_ctl`` run as the ``postgres`` user (PostgreSQL refuses to run as root). The server binaries
are looked up on ``PATH``, then in ``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql``
package). Only the standard library is used, so CI can start the server before anything else.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (the binaries or the ``postgres`` user are missing)."""


@dataclass(frozen=True)
class Server:
    url: str       # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
    data_dir: str
    port: int


def find_binaries() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``.

    Raises:
        PostgresUnavailable: neither is on ``PATH`` nor in ``/usr/lib/postgresql/*/bin``.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(bin_dir, "initdb"), os.X_OK) and os.access(os.path.join(bin_dir, "pg_ctl"), os.X_OK):
            return Path(bin_dir)
    raise PostgresUnavailable("the PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install "
                              "postgresql, or set ROUTELLM_TEST_POSTGRES_URL to a server's URL")


def _as_owner(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as the ``postgres`` user when this process is root, else as this user."""
    if os.geteuid() == 0:
        command = ["su", USER, "-s", "/bin/sh", "-c", shlex.join(args)]
    else:
        command = args
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(attempts: int = 3) -> Server:
    """Initialise a data directory and start a server on it; :func:`stop` ends it.

    Raises:
        PostgresUnavailable: no binaries, or (as root) no ``postgres`` user.
        RuntimeError: ``initdb`` or ``pg_ctl start`` failed (their output is in the message).
    """
    bin_dir = find_binaries()
    owner = None
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam(USER)
        except KeyError:
            raise PostgresUnavailable(f"running as root, and there is no {USER!r} user to run the server as") from None
    data_dir = tempfile.mkdtemp(prefix="routellm-pg-")
    try:
        if owner is not None:
            os.chown(data_dir, owner.pw_uid, owner.pw_gid)
        out = _as_owner([str(bin_dir / "initdb"), "-D", data_dir, "-A", "trust", "-U", USER, "-E", "UTF8",
                         "--no-locale", "--no-sync"], timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed ({out.returncode}): {out.stdout}{out.stderr}")
        error = ""
        for _ in range(attempts):  # another process may take the free port first
            port = _free_port()
            options = (f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            out = _as_owner([str(bin_dir / "pg_ctl"), "-D", data_dir, "-l", os.path.join(data_dir, "server.log"),
                             "-o", options, "-w", "-t", "60", "start"], timeout=90)
            if out.returncode == 0:
                return Server(url=f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres", data_dir=data_dir,
                              port=port)
            log = Path(data_dir, "server.log")
            error = f"{out.stdout}{out.stderr}{log.read_text(errors='replace')[-2000:] if log.exists() else ''}"
        raise RuntimeError(f"pg_ctl start failed {attempts} times: {error}")
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise


def stop(data_dir: str) -> None:
    """Stop the server of ``data_dir`` (if it runs) and delete the directory."""
    if not data_dir or not os.path.isdir(data_dir):
        return
    try:
        bin_dir = find_binaries()
        _as_owner([str(bin_dir / "pg_ctl"), "-D", data_dir, "-m", "immediate", "-w", "-t", "30", "stop"], timeout=60)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"] and len(argv) == 1:
        server = start()
        print(f"export ROUTELLM_TEST_POSTGRES_URL={shlex.quote(server.url)}")
        print(f"export ROUTELLM_TEST_POSTGRES_DIR={shlex.quote(server.data_dir)}")
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        stop(argv[1])
        return 0
    print("usage: postgres_server.py start | stop DATA_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
