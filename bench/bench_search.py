"""Search at zoo scale: the index (zoo/index.py, usearch) over a synthetic zoo of token sketches
shaped like the real ones (search_zoo.py), against the exact linear scan.

Usage: python bench/bench_search.py [--sizes 10000 100000 1000000] [--queries 1000]
                                    [--libraries] [--threads 2]
Per size, one line, of the mode the index searches in at that size (the exact scan up to
zoo/index.py's EXACT_LIMIT, the HNSW graph above it):
  search: N=<n> p50=<ms>ms p99=<ms>ms recall@10=<r> bytes_per_model=<b>
and, as comments, both modes (the graph only up to ``--graph-max``: at 1M it takes about 30 min
to build on 2 cores).
- p50/p99: one query's latency (top 10, ``--threads`` threads), over ``--queries`` queries;
- recall@10: of the query's true relatives (its family) that the exact scan ranks in its top 10,
  the share the index returns in its top 10; ``all@10`` beside it counts every neighbour, strangers
  included (whose order among near-equal cosines matters to nobody);
- bytes_per_model: both stored sketches (2 x 512 B float16) plus both graphs (the coordinate
  graph has the token graph's dimensions and parameters; its size is the token graph's, as
  measured at the largest size built).
``--libraries`` also builds faiss-cpu (IndexHNSWFlat) and hnswlib graphs with the same
parameters on the same sketches, for the library comparison of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from usearch.index import MetricKind
from usearch.index import search as usearch_search

from common import set_threads
from search_zoo import Zoo
from weightprint_fast.zoo.index import (
    CONNECTIVITY,
    EXACT_LIMIT,
    EXPANSION_ADD,
    EXPANSION_SEARCH,
    new_graph,
)
from weightprint_fast.zoo.sketch import COORDINATE_DIMS, TOKEN_DIMS


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The exact top-k (by cosine, self excluded) of each query, in blocks."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 64):
        block = queries[start : start + 64]
        sims = vectors[block] @ vectors.T
        sims[np.arange(len(block)), block] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start : start + 64] = np.take_along_axis(top, order, axis=1)
    return out


def measure(search, zoo: Zoo, queries: np.ndarray, exact: np.ndarray) -> dict:
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        keys = search(zoo.vectors[q])
        times.append(time.perf_counter() - t)
        found.append([int(k) for k in keys if int(k) != q][:10])
    relatives, all_hits = [], []
    for q, got, want in zip(queries, found, exact):
        family = [w for w in want if zoo.family_of[w] == zoo.family_of[q] and zoo.family_of[q] >= 0]
        if family:
            relatives.append(len(set(got) & set(family)) / len(family))
        all_hits.append(len(set(got) & set(want)) / len(want))
    return {
        "p50": 1e3 * float(np.percentile(times, 50)),
        "p99": 1e3 * float(np.percentile(times, 99)),
        "recall": float(np.mean(relatives)),
        "all": float(np.mean(all_hits)),
    }


def usearch_graph(vectors: np.ndarray, threads: int):
    g = new_graph(TOKEN_DIMS)
    t = time.perf_counter()
    g.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=threads)
    return g, time.perf_counter() - t, g.memory_usage / len(vectors)


def others(vectors: np.ndarray, threads: int) -> dict:
    import faiss
    import hnswlib

    out = {}
    faiss.omp_set_num_threads(threads)
    t = time.perf_counter()
    f = faiss.IndexHNSWFlat(vectors.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    f.hnsw.efConstruction = EXPANSION_ADD
    f.add(vectors)
    f.hnsw.efSearch = EXPANSION_SEARCH
    out["faiss-cpu HNSWFlat"] = (
        lambda v: f.search(v[None, :], 11)[1][0],
        time.perf_counter() - t,
        vectors.shape[1] * 4 + 2 * CONNECTIVITY * 4,  # float32 vectors + level-0 links
    )
    t = time.perf_counter()
    h = hnswlib.Index(space="ip", dim=vectors.shape[1])
    h.init_index(max_elements=len(vectors), M=CONNECTIVITY, ef_construction=EXPANSION_ADD)
    h.set_num_threads(threads)
    h.add_items(vectors, np.arange(len(vectors)))
    h.set_ef(EXPANSION_SEARCH)
    out["hnswlib"] = (
        lambda v: h.knn_query(v, 11)[0][0],
        time.perf_counter() - t,
        vectors.shape[1] * 4 + 2 * CONNECTIVITY * 4 + 8,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--graph-max",
        type=int,
        default=100_000,
        help="build the HNSW graph only up to this size (1M takes about 30 min on 2 cores)",
    )
    ap.add_argument("--libraries", action="store_true", help="also faiss-cpu and hnswlib")
    args = ap.parse_args()
    set_threads(args.threads)
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("model name")), "?"
    )
    isa = "avx512f" if " avx512f" in flags else "avx2" if " avx2" in flags else platform.machine()
    print(
        f"# {os.cpu_count()} cores ({args.threads} used), {model}, {isa}; HNSW M={CONNECTIVITY} "
        f"ef_add={EXPANSION_ADD} ef_search={EXPANSION_SEARCH}; exact scan up to {EXACT_LIMIT:,}; "
        f"sketches {TOKEN_DIMS}+{COORDINATE_DIMS} dims"
    )
    sketch_bytes = 2 * (TOKEN_DIMS + COORDINATE_DIMS)  # float16
    graph_bytes = None
    for n in args.sizes:
        zoo = Zoo(n)
        queries = zoo.queries(args.queries)
        t = time.perf_counter()
        exact = exact_top(zoo.vectors, queries, 10)
        scan_ms = 1e3 * (time.perf_counter() - t) / len(queries)
        half = zoo.vectors.astype(np.float16)

        def scan_search(v, half=half):
            return usearch_search(
                half, v.astype(np.float16), 11, MetricKind.Cos, exact=True, threads=args.threads
            ).keys

        scan = measure(scan_search, zoo, queries, exact)
        print(f"# N={n}: numpy float32 scan in blocks of 64 queries {scan_ms:.2f} ms/query")
        print(
            f"#   exact scan (usearch SIMD, float16): p50={scan['p50']:.2f}ms p99={scan['p99']:.2f}ms "
            f"recall@10={scan['recall']:.4f} all@10={scan['all']:.4f}"
        )
        if n <= args.graph_max:
            graph, build, graph_bytes = usearch_graph(zoo.vectors, args.threads)
            m = measure(lambda v, g=graph: g.search(v, 11, threads=args.threads).keys, zoo, queries, exact)
            print(
                f"#   HNSW graph (usearch): build {build:.1f} s p50={m['p50']:.2f}ms p99={m['p99']:.2f}ms "
                f"recall@10={m['recall']:.4f} all@10={m['all']:.4f} graph_bytes_per_model={graph_bytes:.0f}"
            )
            if args.libraries:
                for name, (fn, seconds, vector_bytes) in others(zoo.vectors, args.threads).items():
                    r = measure(fn, zoo, queries, exact)
                    print(
                        f"#   {name}: build {seconds:.1f} s p50={r['p50']:.2f}ms p99={r['p99']:.2f}ms "
                        f"recall@10={r['recall']:.4f} all@10={r['all']:.4f} "
                        f"graph_bytes_per_model~{vector_bytes}"
                    )
        used = scan if n <= EXACT_LIMIT else m
        per_model = sketch_bytes + 2 * (graph_bytes or 0)
        print(
            f"search: N={n} p50={used['p50']:.2f}ms p99={used['p99']:.2f}ms recall@10={used['recall']:.4f} "
            f"bytes_per_model={per_model:.0f}"
        )


if __name__ == "__main__":
    main()
