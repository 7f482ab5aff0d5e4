"""A fingerprint store: one row per checkpoint, in an SQLite file (the embedded default) or in a
shared PostgreSQL database (``postgresql://...``; the ``postgresql`` extra), with one schema and
one behaviour.

Rows are keyed by the checkpoint's path, so a checkpoint is stored once however often it is
fingerprinted. Each row keeps the checkpoint's stamp (total size and newest mtime of its files;
sha256 of their contents when verified), the outcome (ok or error), the fingerprint (JSON,
zlib-compressed) and its lineage sketch (zoo/sketch.py: two float16 vectors of 512 bytes), and a
``seq`` that grows with every write and is never reused: the search index (zoo/index.py) labels
each sketch with it, so a replaced or removed row is found by its seq alone. Writes are single
transactions (SQLite in WAL mode; PostgreSQL upserts), so several processes may write one store.
Stores of the first schema (plain JSON, no sketch) are upgraded when opened for writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import MissingExtraError, StoreError
from ..fingerprint import Fingerprint
from ..readers.resolve import checkpoint_files
from .sketch import LineageSketch, lineage_sketch

SCHEMA_VERSION = 2
_FIRST_SCHEMA = ("path", "size", "mtime", "sha256", "status", "error", "fingerprint", "updated")
_COLUMNS = (
    "seq",
    "path",
    "size",
    "mtime",
    "sha256",
    "status",
    "error",
    "fingerprint",
    "tokens",
    "coordinates",
    "updated",
)
_ROW = "path, status, error, size, updated, fingerprint"

# The two dialects differ in the key's type, binary columns, placeholders and the upsert.
_SQLITE_TABLE = """
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error TEXT,
    fingerprint BLOB,
    tokens BLOB,
    coordinates BLOB,
    updated REAL NOT NULL
)
"""
# The store's identity: a random id made with it, so that an index saved for another store of
# the same name (deleted and made again) is never taken for this one's.
_IDENTITY_TABLE = "CREATE TABLE store_identity (id TEXT NOT NULL)"
_POSTGRES_SEQUENCE = "CREATE SEQUENCE IF NOT EXISTS checkpoints_seq"
_POSTGRES_TABLE = """
CREATE TABLE IF NOT EXISTS checkpoints (
    seq BIGINT PRIMARY KEY DEFAULT nextval('checkpoints_seq'),
    path TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    mtime DOUBLE PRECISION NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error TEXT,
    fingerprint BYTEA,
    tokens BYTEA,
    coordinates BYTEA,
    updated DOUBLE PRECISION NOT NULL
)
"""
_SQLITE_PUT = (
    "INSERT OR REPLACE INTO checkpoints "
    "(path, size, mtime, sha256, status, error, fingerprint, tokens, coordinates, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_POSTGRES_PUT = (
    "INSERT INTO checkpoints "
    "(path, size, mtime, sha256, status, error, fingerprint, tokens, coordinates, updated) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (path) DO UPDATE SET "
    "seq = nextval('checkpoints_seq'), size = EXCLUDED.size, mtime = EXCLUDED.mtime, "
    "sha256 = EXCLUDED.sha256, status = EXCLUDED.status, error = EXCLUDED.error, "
    "fingerprint = EXCLUDED.fingerprint, tokens = EXCLUDED.tokens, "
    "coordinates = EXCLUDED.coordinates, updated = EXCLUDED.updated"
)


def _create_identity(db: Any, placeholder: str) -> None:
    """The identity table of a new store, holding a new random id (``placeholder``: the
    driver's parameter mark, ``?`` for sqlite3, ``%s`` for psycopg)."""
    db.execute(_IDENTITY_TABLE)
    db.execute(f"INSERT INTO store_identity VALUES ({placeholder})", (uuid.uuid4().hex,))


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


def encode_fingerprint(fp: Fingerprint) -> bytes:
    """The fingerprint's JSON, zlib-compressed (level 6: a third of the JSON's size)."""
    return zlib.compress(json.dumps(fp.to_dict(), allow_nan=False).encode(), 6)


def decode_fingerprint(blob: Union[bytes, str, memoryview], where: str) -> Fingerprint:
    """The fingerprint encode_fingerprint wrote (or a first-schema row's plain JSON)."""
    try:
        raw = bytes(blob) if not isinstance(blob, str) else blob.encode()
        text = zlib.decompress(raw) if raw[:1] == b"x" else raw
        data = json.loads(text)
    except (zlib.error, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{where}: the stored fingerprint is damaged ({e})") from e
    return Fingerprint.from_dict(data, where)


@dataclass
class StoredCheckpoint:
    path: str
    status: str
    error: Optional[str]
    size: int
    updated: float
    fingerprint_blob: Optional[bytes]

    def fingerprint(self) -> Fingerprint:
        if self.fingerprint_blob is None:
            raise StoreError(f"{self.path}: no fingerprint stored ({self.error})")
        return decode_fingerprint(self.fingerprint_blob, self.path)


def is_url(store: Union[str, Path]) -> bool:
    """Whether ``store`` names a PostgreSQL database rather than an SQLite file."""
    return str(store).startswith(("postgresql://", "postgres://"))


def display_name(store: Union[str, Path]) -> str:
    """The store as errors name it: a URL without its password."""
    text = str(store)
    if is_url(text) and "@" in text:
        scheme, rest = text.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return text


class FingerprintStore:
    """The store at ``location`` (an SQLite file path, or a ``postgresql://`` URL): created if
    missing, or with ``readonly=True`` opened for reading only (it must exist; nothing is written,
    not even SQLite's journal settings). A file or database that is not a fingerprint store, or
    that cannot be read, is a StoreError."""

    def __init__(self, location: Union[str, Path], readonly: bool = False):
        self.location = str(location)
        self.name = display_name(location)
        self.readonly = readonly
        self.postgres = is_url(location)
        self.path = None if self.postgres else Path(location)
        with self._errors("open"):
            self._db = self._connect()
            columns = self._columns()
            if columns == _FIRST_SCHEMA and not readonly:
                self._upgrade()
                columns = self._columns()
        if columns != _COLUMNS:
            self._db.close()
            if columns == _FIRST_SCHEMA:
                raise StoreError(
                    f"{self.name}: a store of the first schema; open it once for writing "
                    "(weightprint batch --store) to upgrade it"
                )
            raise StoreError(f"{self.name}: not a fingerprint store (no checkpoints table of this version)")

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
            except ImportError as e:
                raise MissingExtraError(
                    "a PostgreSQL store needs psycopg: pip install 'weightprint-fast[postgresql]'"
                ) from e
            db = psycopg.connect(self.location, autocommit=True, connect_timeout=20)
            if not self.readonly:
                with db.transaction():
                    # One creator at a time: concurrent CREATE ... IF NOT EXISTS can still collide.
                    db.execute("SELECT pg_advisory_xact_lock(6072021)")
                    if not self._tables(db):
                        db.execute(_POSTGRES_SEQUENCE)
                        db.execute(_POSTGRES_TABLE)
                        _create_identity(db, "%s")
            return db
        assert self.path is not None
        if self.readonly:
            if not self.path.is_file():
                raise StoreError(f"{self.path}: no such store")
            return sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0, isolation_level=None
            )
        lite = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        # A database with tables of its own is someone else's: never add ours to it.
        if not self._tables(lite):
            lite.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables(lite):  # another process may have made it meanwhile
                    lite.execute(_SQLITE_TABLE)
                    _create_identity(lite, "?")
                lite.execute("COMMIT")
            except BaseException:
                lite.execute("ROLLBACK")
                raise
        lite.execute("PRAGMA journal_mode=WAL")
        return lite

    def _tables(self, db: Any) -> list:
        if self.postgres:
            return db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        return db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence'"
        ).fetchall()

    def _columns(self) -> tuple:
        if self.postgres:
            rows = self._db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'checkpoints' ORDER BY ordinal_position"
            ).fetchall()
            return tuple(r[0] for r in rows)
        return tuple(r[1] for r in self._db.execute("PRAGMA table_info(checkpoints)"))

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.postgres else query

    def _execute(self, query: str, params: Sequence = ()) -> Any:
        return self._db.execute(self._sql(query), params)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """The database's errors (a damaged file, a full disk, a refused connection) as one
        StoreError naming the store."""
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"{self.name}: cannot {doing} the fingerprint store: {e}") from e
        except Exception as e:
            if type(e).__module__.startswith("psycopg"):
                message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise StoreError(f"{self.name}: cannot {doing} the fingerprint store: {message}") from e
            raise

    def _upgrade(self) -> None:
        """First schema -> this one, in one transaction: compress each fingerprint, add its sketch."""
        rows = self._db.execute(f"SELECT {', '.join(_FIRST_SCHEMA)} FROM checkpoints").fetchall()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("ALTER TABLE checkpoints RENAME TO checkpoints_first_schema")
            self._db.execute(_SQLITE_TABLE)
            _create_identity(self._db, "?")
            for path, size, mtime, sha, status, error, text, updated in rows:
                fp = decode_fingerprint(text, path) if text is not None else None
                tokens, coordinates = _sketch_bytes(fp)
                self._db.execute(
                    _SQLITE_PUT,
                    (
                        path,
                        size,
                        mtime,
                        sha,
                        status,
                        error,
                        None if fp is None else encode_fingerprint(fp),
                        tokens,
                        coordinates,
                        updated,
                    ),
                )
            self._db.execute("DROP TABLE checkpoints_first_schema")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FingerprintStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rows -------------------------------------------------------------------------------
    def is_current(self, checkpoint: str, current: Stamp) -> bool:
        """Whether the stored row for ``checkpoint`` is a fingerprint of these same files."""
        with self._errors("read"):
            row = self._execute(
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
        """Stores one outcome (a fingerprint and its sketch, or the error that prevented it),
        replacing any older one under a new seq."""
        tokens, coordinates = _sketch_bytes(fingerprint)
        blob = encode_fingerprint(fingerprint) if fingerprint is not None else None
        row = (
            checkpoint,
            st.size,
            st.mtime,
            st.sha256,
            "ok" if fingerprint is not None else "error",
            error,
            blob,
            tokens,
            coordinates,
            time.time(),
        )
        with self._errors("write"):
            self._db.execute(_POSTGRES_PUT if self.postgres else _SQLITE_PUT, row)

    def get(self, checkpoint: str) -> StoredCheckpoint:
        with self._errors("read"):
            row = self._execute(f"SELECT {_ROW} FROM checkpoints WHERE path = ?", (checkpoint,)).fetchone()
        if row is None:
            raise KeyError(checkpoint)
        return StoredCheckpoint(*row)

    def by_seq(self, seqs: Sequence[int]) -> list[StoredCheckpoint]:
        """The rows with these seqs (those that still exist), in no particular order."""
        if not seqs:
            return []
        marks = ", ".join("?" for _ in seqs)
        with self._errors("read"):
            rows = self._execute(
                f"SELECT {_ROW} FROM checkpoints WHERE seq IN ({marks})", list(seqs)
            ).fetchall()
        return [StoredCheckpoint(*r) for r in rows]

    def state(self) -> tuple[str, int, int]:
        """(store id, rows, largest seq): what a search index compares to know whether it is of
        this store and current."""
        with self._errors("read"):
            n, top = self._execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM checkpoints").fetchone()
            (identity,) = self._execute("SELECT id FROM store_identity").fetchone() or ("",)
        return str(identity), int(n), int(top)

    def sketches(self, after: int = 0) -> Iterator[tuple[int, LineageSketch]]:
        """(seq, sketch) of every ok row with a seq above ``after``, in seq order."""
        with self._errors("read"):
            rows = self._execute(
                "SELECT seq, tokens, coordinates FROM checkpoints "
                "WHERE status = 'ok' AND seq > ? ORDER BY seq",
                (after,),
            ).fetchall()
        for seq, tokens, coordinates in rows:
            try:
                yield (
                    int(seq),
                    LineageSketch.from_bytes(
                        None if tokens is None else bytes(tokens),
                        None if coordinates is None else bytes(coordinates),
                    ),
                )
            except ValueError as e:
                raise StoreError(f"{self.name}: the sketch of row {seq} is damaged ({e})") from e

    def unsketched(self) -> list[int]:
        """Seqs of the ok rows with neither sketch (adapters, fingerprints without probes or
        weight sketches): no index can find them, so a search compares them all."""
        with self._errors("read"):
            rows = self._execute(
                "SELECT seq FROM checkpoints WHERE status = 'ok' AND tokens IS NULL AND coordinates IS NULL"
            ).fetchall()
        return [int(r[0]) for r in rows]

    def seqs(self) -> set[int]:
        """The seqs of every ok row."""
        with self._errors("read"):
            return {
                int(r[0]) for r in self._execute("SELECT seq FROM checkpoints WHERE status = 'ok'").fetchall()
            }

    def __iter__(self) -> Iterator[StoredCheckpoint]:
        with self._errors("read"):
            rows = self._execute(f"SELECT {_ROW} FROM checkpoints ORDER BY path").fetchall()
        return (StoredCheckpoint(*r) for r in rows)

    def __len__(self) -> int:
        return self.state()[1]

    def remove(self, checkpoint: str) -> bool:
        with self._errors("write"):
            return self._execute("DELETE FROM checkpoints WHERE path = ?", (checkpoint,)).rowcount > 0

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


def _sketch_bytes(fp: Optional[Fingerprint]) -> tuple[Optional[bytes], Optional[bytes]]:
    return (None, None) if fp is None else lineage_sketch(fp).to_bytes()
