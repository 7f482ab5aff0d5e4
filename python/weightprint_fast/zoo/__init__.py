"""Many models: the fingerprint store (SQLite or PostgreSQL), lineage sketches, the search index
over them, and search."""

from .index import SketchIndex
from .search import SearchHit, search
from .sketch import LineageSketch, lineage_sketch
from .store import FingerprintStore, Stamp, StoredCheckpoint, stamp

__all__ = [
    "FingerprintStore",
    "LineageSketch",
    "SearchHit",
    "SketchIndex",
    "Stamp",
    "StoredCheckpoint",
    "lineage_sketch",
    "search",
    "stamp",
]
