"""Fleet mode: fingerprint many checkpoints into a store (zoo/store.py), locally or on a Dask cluster.

Executors:
- local (default): worker processes, one checkpoint each at a time, the cores split between
  them so that BLAS threads never oversubscribe;
- Dask distributed (``cluster="tcp://scheduler:8786"``, or a ``distributed.Client``): each
  worker reads its checkpoint from shared storage and sends back only the fingerprint. Dask was
  chosen over Ray because it is pure Python on every platform this package builds for, starts a
  local cluster in-process for tests, and reschedules the tasks of a lost worker by itself.

Only the coordinator (the calling process) writes to the store, so workers never contend for it;
rows are keyed by checkpoint path, so a retried task cannot duplicate a result.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import traceback
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..engine.analyse import usable_cores
from ..engine.progress import show_progress
from ..errors import WeightprintError
from ..fingerprint import Fingerprint
from ..settings import Settings, resolve
from ..zoo.index import SketchIndex
from ..zoo.store import FingerprintStore, Stamp, stamp


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> error


def fingerprint_to_json(path: str, settings: Settings) -> tuple[str, Optional[str], Optional[str]]:
    """Worker task: (path, fingerprint JSON or None, error or None). Never raises."""
    from ..fingerprint import fingerprint

    try:
        fp = fingerprint(path, settings, progress=False)
        return path, json.dumps(fp.to_dict(), allow_nan=False), None
    except Exception as e:  # a failed checkpoint is a result, not the end of the batch
        return path, None, f"{type(e).__name__}: {e}".strip() or traceback.format_exc(limit=1)


def batch(
    paths: Sequence[Union[str, Path]],
    store: Union[str, Path, FingerprintStore],
    *,
    workers: Optional[int] = None,
    cluster=None,
    verify: bool = False,
    progress: Optional[bool] = None,
    on_result: Optional[Callable[[str, Optional[str]], None]] = None,
    settings: Optional[Settings] = None,
    **overrides: Any,
) -> BatchReport:
    """Fingerprints every checkpoint not already in the store with the same files.

    ``workers``: local worker processes (default: cores // 2, at least 1); ``cluster``: a Dask
    scheduler address or Client instead. ``verify``: compare contents by sha256, not size and
    mtime. ``settings`` (and keyword overrides, see :class:`Settings`) go to :func:`fingerprint`.
    ``on_result(path, error)`` is called as each checkpoint finishes. ``progress``: a bar of
    checkpoints done / total (default: only when stderr is a terminal).
    """
    settings = resolve(settings, overrides)
    own = not isinstance(store, FingerprintStore)
    db = store if isinstance(store, FingerprintStore) else FingerprintStore(store)
    report = BatchReport()
    try:
        todo, stamps = [], {}
        for p in paths:
            key = str(Path(p).resolve())
            try:
                stamps[key] = stamp(key, verify)
            except (WeightprintError, OSError) as e:  # its files cannot be resolved: a failed result
                stamps[key] = Stamp(0, 0.0)
                db.put(key, stamps[key], error=f"{type(e).__name__}: {e}")
                report.failed[key] = f"{type(e).__name__}: {e}"
                continue
            if db.is_current(key, stamps[key]):
                report.skipped.append(key)
            else:
                todo.append(key)
        bar = None
        if show_progress(progress) and todo:
            from tqdm.auto import tqdm

            # Checkpoints done / total with an ETA; skipped ones are not work.
            bar = tqdm(total=len(todo), desc="batch", unit="checkpoint")
        for path, fp_json, error in _run(todo, settings, workers, cluster):
            if fp_json is not None:
                db.put(path, stamps[path], Fingerprint.from_dict(json.loads(fp_json), path))
                report.done.append(path)
            else:
                db.put(path, stamps[path], error=error)
                report.failed[path] = error
            if on_result:
                on_result(path, error)
            if bar:
                bar.update(1)
        if bar:
            bar.close()
        if report.done:
            SketchIndex.open(db)  # brings the search index up to date with what was written
    finally:
        if own:
            db.close()
    return report


def _run(todo: list[str], settings: Settings, workers: Optional[int], cluster):
    if not todo:
        return
    if cluster is not None:
        yield from _run_dask(todo, settings, cluster)
        return
    cores = usable_cores()
    workers = max(1, min(workers or max(1, cores // 2), len(todo)))
    per_worker = settings.replace(threads=settings.threads or max(1, cores // workers))
    yield from _run_local(todo, per_worker, workers)


DIED = (
    "the worker process died while fingerprinting it (killed, out of memory, or a crash), "
    "and again when it was retried alone"
)


def _run_local(todo: list[str], settings: Settings, workers: int):
    """Local worker processes, each checkpoint in one. A worker that dies takes its pool down
    (concurrent.futures cannot tell which task killed it), so the checkpoints in flight then are
    retried one at a time in a fresh pool: the one that dies again is recorded as failed, the
    others finish, and the rest of the list goes on."""
    queue: deque[str] = deque(todo)
    suspects: deque[str] = deque()
    while queue or suspects:
        alone = bool(suspects)  # a retry runs by itself, so a second death names its checkpoint
        source = suspects if alone else queue
        size = 1 if alone else workers
        in_flight: dict = {}
        # Spawned, not forked: a fork of a process whose OpenBLAS threads already run can deadlock.
        pool = ProcessPoolExecutor(
            max_workers=size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_end_with_parent,
            initargs=(os.getpid(),),
        )
        try:
            while source or in_flight:
                while source and len(in_flight) < size:
                    path = source.popleft()
                    in_flight[pool.submit(fingerprint_to_json, path, settings)] = path
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                results = []
                for f in done:
                    path = in_flight.pop(f)
                    try:
                        results.append(f.result())
                    except BrokenProcessPool:
                        if alone:
                            results.append((path, None, DIED))
                        else:
                            suspects.append(path)
                yield from results
                if len(suspects) and not alone:
                    suspects.extend(in_flight.values())  # the pool is gone: everything in it is suspect
                    break
                if alone and results and results[0][2] == DIED:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _end_with_parent(parent: int) -> None:
    """Worker initializer: the worker is killed when the process that started it (``parent``)
    dies (Linux), so a batch killed with -9 leaves no worker computing for nobody."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request was made: we were reparented
        os._exit(1)


def _run_dask(todo: list[str], settings: Settings, cluster):
    from distributed import Client
    from distributed import as_completed as dask_completed

    client = cluster if isinstance(cluster, Client) else Client(cluster)
    try:
        futures = client.map(fingerprint_to_json, todo, settings=settings, pure=False)
        for f in dask_completed(futures):
            try:
                yield f.result()
            except Exception as e:  # the task itself failed repeatedly (e.g. its workers kept dying)
                idx = futures.index(f)
                yield todo[idx], None, f"{type(e).__name__}: {e}"
    finally:
        if client is not cluster:
            client.close()


__all__ = ["BatchReport", "batch", "fingerprint_to_json"]
