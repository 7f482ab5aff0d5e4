"""Fleet mode: batch fingerprinting into a store (local workers and a real Dask cluster), resume,
failures, concurrent writers, search."""

import json
import multiprocessing
import os
import shutil
import sqlite3

import numpy as np
import pytest

import weightprint_fast as wf
from weightprint_fast.apps import cli
from weightprint_fast.zoo.store import FingerprintStore, stamp


@pytest.fixture(scope="module")
def models(demo_zoo):
    return demo_zoo


def stored_arrays(db_path):
    with FingerprintStore(db_path) as db:
        return {r.path: r.fingerprint() for r in db if r.status == "ok"}


def test_batch_stores_every_checkpoint_and_a_rerun_skips_them(models, tmp_path):
    db = tmp_path / "s.db"
    first = wf.batch(list(models.values()), db, workers=2, progress=False)
    assert sorted(first.done) == sorted(os.path.realpath(p) for p in models.values()) and not first.failed
    again = wf.batch(list(models.values()), db, workers=2, progress=False)
    assert again.done == [] and len(again.skipped) == len(models)
    with FingerprintStore(db) as s:
        assert len(s) == len(models)


def test_a_changed_checkpoint_is_fingerprinted_again(models, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(models["family-b"], ck)
    db = tmp_path / "s.db"
    wf.batch([ck], db, workers=1, progress=False)
    shutil.copy(models["family-a"] + "/model.safetensors", ck / "model.safetensors")
    report = wf.batch([ck], db, workers=1, progress=False)
    assert report.done == [str(ck.resolve())]
    with FingerprintStore(db) as s:
        fp = s.get(str(ck.resolve())).fingerprint()
    assert wf.compare(fp, models["family-a"], progress=False).verdict == "same-model"


def test_verify_catches_changes_that_keep_size_and_mtime(models, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(models["family-a"], ck)
    db = tmp_path / "s.db"
    wf.batch([ck], db, workers=1, verify=True, progress=False)
    weights = ck / "model.safetensors"
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last weight
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert wf.batch([ck], db, workers=1, progress=False).skipped == [str(ck.resolve())]
    assert wf.batch([ck], db, workers=1, verify=True, progress=False).done == [str(ck.resolve())]


def test_a_failed_checkpoint_is_recorded_and_the_batch_goes_on(models, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"\x0a\x00\x00\x00\x00\x00\x00\x00{not json}")
    db = tmp_path / "s.db"
    report = wf.batch([bad, models["family-a"]], db, workers=2, progress=False)
    assert report.done == [os.path.realpath(models["family-a"])]
    assert "not valid JSON" in report.failed[str(bad.resolve())]
    with FingerprintStore(db) as s:
        row = s.get(str(bad.resolve()))
    assert row.status == "error" and "not valid JSON" in row.error


def _writer(db_path, worker):
    with FingerprintStore(db_path) as s:
        for i in range(25):
            s.put(f"/ckpt/{worker}/{i}", stamp(db_path), error=f"row {i}")


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path):
    db = tmp_path / "s.db"
    FingerprintStore(db).close()
    procs = [multiprocessing.get_context("spawn").Process(target=_writer, args=(db, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 100


def test_search_ranks_a_models_own_copy_first(models, tmp_path):
    db = tmp_path / "s.db"
    others = [p for k, p in models.items() if k != "family-a"]
    wf.batch(others, db, workers=2, progress=False)
    hits = wf.search(models["family-a"], db, top=3, progress=False)
    assert hits[0].path == os.path.realpath(models["family-a-copy"])
    assert hits[0].comparison.verdict == "same-model"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


def test_dask_cluster_gives_the_same_fingerprints_as_local_workers(models, tmp_path, dask_cluster):
    local, remote = tmp_path / "local.db", tmp_path / "dask.db"
    wf.batch(list(models.values()), local, workers=2, progress=False)
    report = wf.batch(list(models.values()), remote, cluster=dask_cluster, progress=False)
    assert len(report.done) == len(models) and not report.failed
    a, b = stored_arrays(local), stored_arrays(remote)
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path].std_vector, b[path].std_vector)
        np.testing.assert_allclose(a[path].singular_values, b[path].singular_values, rtol=1e-6)


def _exit_soon():
    """Runs on a Dask worker: the process dies right after answering."""
    import threading

    threading.Timer(0.05, os._exit, args=(1,)).start()


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(models, tmp_path, dask_cluster):
    db = tmp_path / "s.db"
    paths = list(models.values())
    for i in range(4):  # more checkpoints than workers, so some are in flight at the kill
        dst = tmp_path / f"extra-{i}"
        shutil.copytree(models["family-b"], dst)
        paths.append(str(dst))
    killed = []

    def kill_one_worker(path, error):
        if not killed:
            victim = sorted(dask_cluster.scheduler_info()["workers"])[0]
            # The worker may die before its answer leaves (a busy machine): the kill is what counts.
            dask_cluster.run(_exit_soon, workers=[victim], on_error="ignore")
            killed.append(victim)

    report = wf.batch(paths, db, cluster=dask_cluster, progress=False, on_result=kill_one_worker)
    assert killed and not report.failed
    assert sorted(report.done) == sorted(os.path.realpath(p) for p in paths)
    with FingerprintStore(db) as s:
        assert len(s) == len(paths) and all(r.status == "ok" for r in s)


def test_cli_batch_store_and_search(models, tmp_path, capsys):
    db = tmp_path / "s.db"
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([models["family-a"], models["family-b"]]) + "\n")
    assert cli.main(["batch", "--from-file", str(listing), "--store", str(db), "-q", "--workers", "1"]) == 0
    assert "2 fingerprinted" in capsys.readouterr().out
    assert cli.main(["store", "ls", "--store", str(db), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert cli.main(["search", models["family-a-copy"], "--store", str(db), "--top", "1", "-q"]) == 0
    assert "same-model" in capsys.readouterr().out
    assert cli.main(["store", "export", str(tmp_path / "out"), "--store", str(db)]) == 0
    assert len(list((tmp_path / "out").glob("*.fingerprint.json"))) == 2
    assert cli.main(["store", "rm", models["family-b"], "--store", str(db)]) == 0
    with FingerprintStore(db) as s:
        assert len(s) == 1
