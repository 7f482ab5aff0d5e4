"""A real PostgreSQL server for the store tests, from Debian's ``postgresql`` package: initdb and
pg_ctl in a temporary directory, listening on a free loopback port, trusted local logins. As
root (CI), the server runs as the ``postgres`` user, which initdb requires."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import system_tools


def binaries() -> Optional[Path]:
    """The directory holding initdb and pg_ctl, or None where the server is not installed."""
    for found in [
        system_tools.find("pg_ctl"),
        *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True),
    ]:
        if found and Path(found).with_name("initdb").exists():
            return Path(found).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL server in a new directory of its own under the system's temporary directory
    (the server's user must reach it, and pytest's are private to root); :meth:`stop` stops it
    and removes the directory. ``url(db)`` connects to it."""

    def __init__(self):
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's server binaries are not installed")
        self.bin, self.port = bin_dir, _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wpf-postgres-"))
        self.data = self.root / "data"
        self.user: Optional[str] = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        root = self.root
        self._run("initdb", "-D", str(self.data), "-U", "wpf", "--auth=trust", "-E", "UTF8")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(root / "log"), "-w", "-t", "60",
            "-o", f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.user is not None:
            runuser = system_tools.find("runuser")
            if runuser is None:
                raise RuntimeError("runuser (util-linux) is needed to start the server as root")
            cmd = [runuser, "-u", self.user, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, cwd=self.root, env=system_tools.environment()
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
            )

    def create(self, name: str) -> str:
        """A new database ``name``; its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql://wpf@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
