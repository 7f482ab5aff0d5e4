"""A synthetic zoo of token sketches (zoo/sketch.py) shaped like the real ones, for the search
benchmark: independent models as real sketches' mean direction plus their principal spread plus
isotropic noise, calibrated to the stored evaluation's independent pairs, and families of
derivatives at the cosines measured between the evaluation's derived pairs and their parents.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import weightprint_fast as wf
from weightprint_fast.zoo.sketch import lineage_sketch

EVALUATION = Path(__file__).resolve().parent.parent / "experiments" / "results" / "lineage"


def real_sketches() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(roots' token sketches, derived-to-parent cosines, independent-pair cosines) of the stored
    evaluation (experiments/results/lineage)."""
    labels = json.loads((EVALUATION / "labels.json").read_text())
    sk = {
        p.stem: lineage_sketch(wf.Fingerprint.load(p)).tokens
        for p in sorted((EVALUATION / "fingerprints").glob("*.json"))
    }
    roots = np.array([sk[n] for n, lab in labels.items() if not lab["parents"] and sk.get(n) is not None])
    derived = [
        float(sk[n] @ sk[p]) for n, lab in labels.items() for p in lab["parents"] if sk.get(n) is not None
    ]
    pairs = json.loads((EVALUATION / "pairs.json").read_text())
    independent = [float(sk[p["a"]] @ sk[p["b"]]) for p in pairs if not p["related"]]
    # Derivatives the token sketch is not meant to see (transplants under a foreign embedding,
    # the 30% share of an average) are the coordinate sketch's: keep what tokens carry.
    return roots, np.array([c for c in derived if c > 0.4]), np.array(independent)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Zoo:
    """``n`` sketches: families of one base and ``family - 1`` derivatives, then singletons.
    ``family_of[i]``: the family index of sketch i (-1 for a singleton)."""

    def __init__(self, n: int, seed: int = 0, family: int = 8, families_share: float = 0.5):
        rng = np.random.default_rng(seed)
        roots, derived, independent = real_sketches()
        self.derived_cosines, self.real_independent = derived, independent
        mean = roots.mean(axis=0)
        spread = roots - mean
        dims = roots.shape[1]
        # Calibration: the mean direction's weight sets the median independent cosine, the
        # roots' own spread its upper tail.
        target = float(np.median(independent))
        a = np.sqrt(target / max(1e-6, 1 - target))
        n_fam = int(n * families_share) // family
        n_bases = n_fam + (n - n_fam * family)
        mix = rng.standard_normal((n_bases, len(roots))).astype(np.float32) / np.sqrt(len(roots))
        bases = unit(
            a * unit(mean)[None, :] * 1.0
            + unit(rng.standard_normal((n_bases, dims)).astype(np.float32))
            + 0.5 * mix @ spread
        )
        out = np.empty((n, dims), dtype=np.float32)
        self.family_of = np.full(n, -1, dtype=np.int64)
        i = 0
        for f in range(n_fam):
            out[i] = bases[f]
            c = rng.choice(derived, family - 1)
            eps = np.sqrt(1.0 / c**2 - 1.0)[:, None]
            noise = unit(rng.standard_normal((family - 1, dims)).astype(np.float32))
            out[i + 1 : i + family] = unit(bases[f][None, :] + eps * noise)
            self.family_of[i : i + family] = f
            i += family
        out[i:] = bases[n_fam:]
        self.vectors = out
        self.n_families = n_fam

    def queries(self, count: int, seed: int = 1) -> np.ndarray:
        """Indices of derivatives (not bases) to query with."""
        rng = np.random.default_rng(seed)
        members = np.flatnonzero((self.family_of >= 0) & (np.arange(len(self.family_of)) % 8 != 0))
        return rng.choice(members, min(count, len(members)), replace=False)
