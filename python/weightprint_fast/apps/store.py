"""A fingerprint store: one SQLite file, one row per checkpoint, opened by path.

Rows are keyed by the checkpoint's path, so a checkpoint is stored once however often it is
fingerprinted. Each row keeps the checkpoint's stamp (total size and newest mtime of its files;
sha256 of their contents when verified), the outcome (ok or error) and the fingerprint's JSON.
Writes are single transactions in WAL mode, so several processes may write the same store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import StoreError
from ..fingerprint import Fingerprint
from ..readers.resolve import checkpoint_files

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error TEXT,
    fingerprint TEXT,
    updated REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Stamp:
    """What identifies a checkpoint's contents: size and newest mtime of its files, and, when
    asked for, a sha256 over their bytes."""

    size: int
    mtime: float
    sha256: Optional[str] = None


def stamp(path: Union[str, Path], verify: bool = False) -> Stamp:
    """The stamp of every file of the checkpoint (readers/resolve.py: all shards, split parts,
    index and config), so that editing any of them makes the stored fingerprint stale."""
    files = checkpoint_files(path)
    stats = [f.stat() for f in files]
    digest = None
    if verify:
        h = hashlib.sha256()
        for f in files:
            with open(f, "rb") as fh:
                while block := fh.read(1 << 24):
                    h.update(block)
        digest = h.hexdigest()
    return Stamp(sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=0.0), digest)


@dataclass
class StoredCheckpoint:
    path: str
    status: str
    error: Optional[str]
    size: int
    updated: float
    fingerprint_json: Optional[str]

    def fingerprint(self) -> Fingerprint:
        if self.fingerprint_json is None:
            raise StoreError(f"{self.path}: no fingerprint stored ({self.error})")
        try:
            data = json.loads(self.fingerprint_json)
        except json.JSONDecodeError as e:
            raise StoreError(f"{self.path}: the stored fingerprint is damaged ({e})") from e
        return Fingerprint.from_dict(data, self.path)


_COLUMNS = ("path", "size", "mtime", "sha256", "status", "error", "fingerprint", "updated")


@contextlib.contextmanager
def _store_errors(path: Path, doing: str) -> Iterator[None]:
    """SQLite's errors (a damaged file, a full disk, a read-only directory) as one StoreError."""
    try:
        yield
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot {doing} the fingerprint store: {e}") from e


class FingerprintStore:
    """The store at ``path``: created if missing, or with ``readonly=True`` opened for reading only
    (it must exist; nothing is written, not even SQLite's journal settings). A file that is not a
    fingerprint store, or that SQLite cannot read, is a StoreError."""

    def __init__(self, path: Union[str, Path], readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path}: no such store")
        with _store_errors(self.path, "open"):
            if readonly:
                self._db = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0, isolation_level=None
                )
            else:
                self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
                # A database with tables of its own is someone else's: never add ours to it.
                if not self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                    self._db.execute(SCHEMA)
                self._db.execute("PRAGMA journal_mode=WAL")
            columns = tuple(r[1] for r in self._db.execute("PRAGMA table_info(checkpoints)"))
        if columns != _COLUMNS:
            self._db.close()
            raise StoreError(f"{self.path}: not a fingerprint store (no checkpoints table of this version)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FingerprintStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def is_current(self, checkpoint: str, current: Stamp) -> bool:
        """Whether the stored row for ``checkpoint`` is a fingerprint of these same files."""
        with _store_errors(self.path, "read"):
            row = self._db.execute(
                "SELECT size, mtime, sha256, status FROM checkpoints WHERE path = ?", (checkpoint,)
            ).fetchone()
        if row is None or row[3] != "ok" or row[0] != current.size:
            return False
        if current.sha256 is not None:
            return row[2] == current.sha256
        return row[1] == current.mtime

    def put(
        self,
        checkpoint: str,
        st: Stamp,
        fingerprint: Optional[Fingerprint] = None,
        error: Optional[str] = None,
    ) -> None:
        """Stores one outcome (a fingerprint, or the error that prevented it), replacing any older one."""
        with _store_errors(self.path, "write"):
            self._put(checkpoint, st, fingerprint, error)

    def _put(
        self, checkpoint: str, st: Stamp, fingerprint: Optional[Fingerprint], error: Optional[str]
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                checkpoint,
                st.size,
                st.mtime,
                st.sha256,
                "ok" if fingerprint is not None else "error",
                error,
                json.dumps(fingerprint.to_dict(), allow_nan=False) if fingerprint is not None else None,
                time.time(),
            ),
        )

    def get(self, checkpoint: str) -> StoredCheckpoint:
        with _store_errors(self.path, "read"):
            row = self._db.execute(
                "SELECT path, status, error, size, updated, fingerprint FROM checkpoints WHERE path = ?",
                (checkpoint,),
            ).fetchone()
        if row is None:
            raise KeyError(checkpoint)
        return StoredCheckpoint(*row)

    def __iter__(self) -> Iterator[StoredCheckpoint]:
        with _store_errors(self.path, "read"):
            rows = self._db.execute(
                "SELECT path, status, error, size, updated, fingerprint FROM checkpoints ORDER BY path"
            ).fetchall()
        return (StoredCheckpoint(*r) for r in rows)

    def __len__(self) -> int:
        with _store_errors(self.path, "read"):
            return self._db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]

    def remove(self, checkpoint: str) -> bool:
        with _store_errors(self.path, "write"):
            return self._db.execute("DELETE FROM checkpoints WHERE path = ?", (checkpoint,)).rowcount > 0

    def export(self, directory: Union[str, Path]) -> list[Path]:
        """Writes every stored fingerprint as ``<n>-<name>.fingerprint.json``; returns the files."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for i, row in enumerate(r for r in self if r.status == "ok"):
            fp = row.fingerprint()
            target = out / f"{i:04d}-{Path(row.path).name}.fingerprint.json"
            fp.save(target)
            written.append(target)
        return written
