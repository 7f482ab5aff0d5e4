"""The search index: approximate nearest neighbours over the stored lineage sketches, one graph
per sketch (tokens, coordinates), labelled by the rows' seq.

The library is usearch (HNSW graphs, cosine, float16 vectors): measured beside faiss-cpu and
hnswlib on the same sketches (bench/bench_search.py --libraries; bench/RESULTS.md), it keeps
vectors in half the memory of the other two, removes entries (faiss's HNSW cannot), saves and
memory-maps a graph, and is released monthly (hnswlib's last release is from 2023). The index is
a cache of the store: kept beside an SQLite store (``<store>.index/``) or, for PostgreSQL, in
the user's cache directory; brought up to date from the store's seqs whenever it is opened
(``batch`` does so after writing), and rebuilt from the store if it is missing or damaged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import MissingExtraError
from .sketch import COORDINATE_DIMS, TOKEN_DIMS, LineageSketch
from .store import FingerprintStore

KINDS = {"tokens": TOKEN_DIMS, "coordinates": COORDINATE_DIMS}
# HNSW parameters (bench/RESULTS.md): 16 links per node, 128 candidates while building, 1024 while
# searching. Sketches of independent models are nearly isotropic in 256 dimensions, the hard case
# for a graph: at 100k, recall@10 of the true relatives was 0.979 / 0.985 / 0.992 / 0.996 with
# 128 / 256 / 512 / 1024 search candidates (p99 2.2 / 3.6 / 6.5 / 12 ms on 2 cores), and at 1M
# 0.93 with 1024 (p99 97 ms). So up to EXACT_LIMIT sketches a search scans them all with usearch's
# SIMD kernel on the float16 vectors (recall 1 by construction; about 0.2 s at 1M on 2 cores) and
# the graph, kept up to date all along, serves larger zoos.
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 1024
EXACT_LIMIT = 2_000_000
_STATE = "state.json"
_VERSION = 1


def _usearch():
    try:
        from usearch.index import Index
    except ImportError as e:  # a base dependency: only a broken install lacks it
        raise MissingExtraError("the search index needs usearch: pip install usearch") from e
    return Index


def new_graph(dims: int):
    """An empty usearch graph for unit vectors of ``dims`` float16 values."""
    return _usearch()(
        ndim=dims,
        metric="cos",
        dtype="f16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


def _seal(path: Path, span: int = 1 << 20) -> str:
    """Size and sha256 of a file's first and last MiB: what a truncated or overwritten graph
    changes, read in a few milliseconds whatever the graph's size."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(span))
        f.seek(max(0, size - span))
        h.update(f.read(span))
    return h.hexdigest()


def index_directory(db: FingerprintStore) -> Path:
    """Where the index of ``db`` lives: beside an SQLite file; for a PostgreSQL store, under
    $XDG_CACHE_HOME (or ~/.cache)/weightprint-fast/indexes/, named by the URL's digest."""
    if db.path is not None:
        return db.path.with_name(db.path.name + ".index")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(db.name.encode()).hexdigest()[:16]
    return cache / "weightprint-fast" / "indexes" / digest


class SketchIndex:
    """The graphs of one store (``store_id``), current as of (``rows``, ``top_seq``) of its state."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.graphs = {kind: new_graph(dims) for kind, dims in KINDS.items()}
        self.store_id, self.rows, self.top_seq = "", -1, 0
        self.viewed = False  # graphs memory-mapped read-only (refresh loads them first)

    @classmethod
    def open(cls, db: FingerprintStore, save: bool = True) -> SketchIndex:
        """The store's index: memory-mapped read-only when saved and current (a search of a
        million models then reads only the pages it touches), else loaded, brought up to date
        and saved (when ``save`` and the directory is writable)."""
        index = cls(index_directory(db))
        if index._load(view_if=db.state()):
            return index
        if index.refresh(db) and save:
            index.save()
        return index

    def _load(self, view_if: tuple[str, int, int]) -> bool:
        """Loads the saved graphs (memory-mapped when their state is ``view_if``); returns
        whether they were mapped, current and read-only."""
        try:
            state = json.loads((self.directory / _STATE).read_text())
            if state.get("version") != _VERSION:
                return False
            saved = (str(state["store_id"]), int(state["rows"]), int(state["top_seq"]))
            current = saved == view_if
            graphs = {}
            for kind in KINDS:
                g = new_graph(KINDS[kind])
                path = str(self.directory / f"{kind}.usearch")
                # usearch trusts the sizes inside its file: a damaged one could crash the parse,
                # so a graph whose size or ends differ from what was saved is rebuilt instead.
                if _seal(Path(path)) != state["seals"][kind]:
                    return False
                if current:
                    g.view(path)
                else:
                    g.load(path)
                graphs[kind] = g
        except (OSError, ValueError, RuntimeError, KeyError):
            return False  # missing or damaged: a cache, rebuilt from the store
        self.graphs, (self.store_id, self.rows, self.top_seq) = graphs, saved
        self.viewed = current
        return current

    def refresh(self, db: FingerprintStore) -> bool:
        """Adds the sketches of rows written since, removes those of rows replaced or removed;
        returns whether anything changed."""
        identity, rows, top = db.state()
        if (identity, rows, top) == (self.store_id, self.rows, self.top_seq):
            return False
        if self.viewed:  # a mapped graph is read-only: load it to change it
            self._load(view_if=("", -1, -1))
        if identity != self.store_id:  # saved for another store of this name: start afresh
            self.graphs = {kind: new_graph(dims) for kind, dims in KINDS.items()}
            self.top_seq = 0
        live = db.seqs()
        for g in self.graphs.values():
            stale = [int(k) for k in np.asarray(g.keys) if int(k) not in live]
            for key in stale:
                g.remove(key)
        fresh: dict[str, tuple[list[int], list[np.ndarray]]] = {kind: ([], []) for kind in KINDS}
        for seq, sketch in db.sketches(after=self.top_seq):
            for kind in KINDS:
                v = getattr(sketch, kind)
                if v is not None and seq not in self.graphs[kind]:
                    fresh[kind][0].append(seq)
                    fresh[kind][1].append(v)
        for kind, (keys, vectors) in fresh.items():
            if keys:
                self.graphs[kind].add(np.array(keys, dtype=np.uint64), np.stack(vectors), threads=0)
        self.store_id, self.rows, self.top_seq = identity, rows, top
        return True

    def save(self) -> None:
        """Writes the graphs and their state (each file replaced whole); a directory that cannot
        be written leaves the index in memory only."""
        # usearch reports a failed write as RuntimeError
        with contextlib.suppress(OSError, RuntimeError):
            self.directory.mkdir(parents=True, exist_ok=True)
            seals = {}
            for kind, g in self.graphs.items():
                tmp = self.directory / f"{kind}.usearch.tmp{os.getpid()}"
                g.save(str(tmp))
                seals[kind] = _seal(tmp)
                os.replace(tmp, self.directory / f"{kind}.usearch")
            tmp = self.directory / f"{_STATE}.tmp{os.getpid()}"
            state = {
                "version": _VERSION,
                "store_id": self.store_id,
                "rows": self.rows,
                "top_seq": self.top_seq,
                "seals": seals,
            }
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.directory / _STATE)

    def __len__(self) -> int:
        return max(len(g) for g in self.graphs.values())

    def nearest(self, kind: str, vector: Optional[np.ndarray], count: int) -> list[tuple[int, float]]:
        """(seq, cosine) of the ``count`` nearest sketches of this kind, best first."""
        g = self.graphs[kind]
        if vector is None or len(g) == 0 or count <= 0:
            return []
        found = g.search(
            np.asarray(vector, dtype=np.float32), min(count, len(g)), exact=len(g) <= EXACT_LIMIT
        )
        return [(int(k), 1.0 - float(d)) for k, d in zip(found.keys, found.distances) if np.isfinite(d)]

    def candidates(self, sketch: LineageSketch, tokens: int, coordinates: int) -> list[int]:
        """Seqs of the nearest stored models by either sketch, nearest first, each once."""
        seen: dict[int, None] = {}
        for seq, _ in self.nearest("tokens", sketch.tokens, tokens) + self.nearest(
            "coordinates", sketch.coordinates, coordinates
        ):
            seen.setdefault(seq, None)
        return list(seen)
