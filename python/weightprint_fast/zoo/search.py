"""Search: which stored models is this one related to? Index candidates by either lineage sketch
(zoo/index.py), then the exact ``compare`` of each candidate, ranked by verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..compare import Comparison, as_fingerprint, compare
from ..errors import InputError
from ..fingerprint import Fingerprint
from ..settings import Settings
from .index import SketchIndex
from .sketch import lineage_sketch
from .store import FingerprintStore

# Candidates taken from each graph for the exact stage: 32 by the token sketch (any width or
# depth), 16 by the coordinate sketch (shared weights: averages, transplants).
TOKEN_CANDIDATES = 32
COORDINATE_CANDIDATES = 16


@dataclass
class SearchHit:
    path: str
    comparison: Comparison
    score: float  # verdict rank first, then closeness within it (see _score)


def _score(c: Comparison) -> float:
    """The verdict's rank, plus a closeness in [0, 1): the token correlation where the probes
    spoke, else circuit (or spectral) closeness, else half the SD cosine."""
    if c.token_correlation is not None:
        closeness = (1.0 + max(-1.0, min(1.0, c.token_correlation))) / 2.0001
    else:
        distance = c.circuit_distance if c.circuit_distance is not None else c.spectral_distance
        closeness = 1.0 / (1.0 + distance) if distance is not None else c.sd_cosine / 2
    return c.verdict.rank + closeness


def search(
    query: Union[Fingerprint, str, Path],
    store: Union[str, Path, FingerprintStore],
    *,
    top: int = 10,
    candidates: Optional[int] = None,
    settings: Optional[Settings] = None,
    **overrides: Any,
) -> list[SearchHit]:
    """The stored models nearest ``query`` (a Fingerprint, a saved fingerprint or a checkpoint,
    fingerprinted with ``settings``), best first by verdict, then closeness.

    The index proposes ``candidates`` models by the token sketch (default 32, and half as many by
    the coordinate sketch); each is compared exactly. Rows without sketches are always compared.
    """
    q = as_fingerprint(query, settings, **overrides)
    own = not isinstance(store, FingerprintStore)
    db = store if isinstance(store, FingerprintStore) else FingerprintStore(store, readonly=True)
    try:
        index = SketchIndex.open(db)
        tokens = candidates or TOKEN_CANDIDATES
        seqs = index.candidates(
            lineage_sketch(q), tokens, max(1, tokens // 2) if candidates else COORDINATE_CANDIDATES
        )
        proposed = set(seqs)
        seqs += [s for s in db.unsketched() if s not in proposed]
        hits = []
        for row in db.by_seq(seqs):
            fp = row.fingerprint().renamed(row.path)
            try:
                c = compare(q, fp)
            except InputError:  # no projection type in common
                continue
            hits.append(SearchHit(row.path, c, _score(c)))
    finally:
        if own:
            db.close()
    hits.sort(key=lambda h: -h.score)
    return hits[:top]
