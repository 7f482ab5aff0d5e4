"""The store on both backends, SQLite (embedded) and PostgreSQL (a real server started by the
test from Debian's postgresql package): one schema, the same semantics, the same search answers,
and concurrent batch processes that lose nothing."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3

import pytest

import postgres
import weightprint_fast as wf
from weightprint_fast.apps import cli
from weightprint_fast.zoo.index import SketchIndex, index_directory
from weightprint_fast.zoo.store import FingerprintStore, Stamp

pytest.importorskip("psycopg", reason="PostgreSQL stores need psycopg (the postgresql extra)")


@pytest.fixture(scope="module")
def server():
    if postgres.binaries() is None:
        pytest.skip(
            "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
        )
    s = postgres.Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def models(demo_zoo):
    return demo_zoo


_names = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """A new, empty store on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("server").create(f"store{next(_names)}")


@pytest.fixture(scope="module")
def fingerprint(models):
    return wf.fingerprint(models["family-a"], progress=False)


def test_a_rewritten_row_replaces_the_old_one_under_a_new_seq(location, fingerprint):
    with FingerprintStore(location) as db:
        db.put("m", Stamp(1, 1.0), fingerprint)
        _, _, first = db.state()
        db.put("m", Stamp(2, 2.0), fingerprint)
        _, rows, second = db.state()
        assert rows == 1 and second > first and db.seqs() == {second}
        assert db.get("m").size == 2


def test_an_error_row_has_no_sketch_and_is_not_indexed(location, fingerprint):
    with FingerprintStore(location) as db:
        db.put("bad", Stamp(0, 0.0), error="ValueError: broken")
        db.put("good", Stamp(1, 1.0), fingerprint)
        assert [s for s, _ in db.sketches()] == [max(db.seqs())]
        assert db.get("bad").status == "error" and len(db) == 2


def test_a_removed_row_leaves_the_index(location, fingerprint):
    with FingerprintStore(location) as db:
        db.put("a", Stamp(1, 1.0), fingerprint)
        db.put("b", Stamp(1, 1.0), fingerprint)
        index = SketchIndex.open(db)
        assert len(index.graphs["coordinates"]) == 2
        db.remove("a")
        index.refresh(db)
        assert len(index.graphs["coordinates"]) == 1


def test_batch_and_search_give_the_same_answers_on_both_backends(models, tmp_path, server):
    lite, pg = str(tmp_path / "s.db"), server.create("same_answers")
    answers = []
    for location in (lite, pg):
        report = wf.batch(list(models.values()), location, workers=1, progress=False)
        assert not report.failed and len(report.done) == len(models)
        hits = wf.search(models["family-a"], location, progress=False)
        answers.append([(h.path, str(h.comparison.verdict)) for h in hits])
    assert answers[0] == answers[1]
    assert answers[0][0][1] == "same-model"


def _batch_process(location: str, paths: list[str]) -> None:
    wf.batch(paths, location, workers=1, progress=False)


def test_several_batch_processes_writing_one_store_lose_nothing(models, tmp_path, location):
    copies = []
    for i in range(6):
        target = tmp_path / f"m{i}"
        shutil.copytree(models["family-a" if i % 2 else "family-b"], target)
        copies.append(str(target.resolve()))
    # Three processes over overlapping lists: every checkpoint is written by two of them.
    lists = [copies[0:4], copies[2:6], copies[0:2] + copies[4:6]]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_batch_process, args=(location, paths)) for paths in lists]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with FingerprintStore(location, readonly=True) as db:
        rows = list(db)
        assert sorted(r.path for r in rows) == sorted(copies)
        assert all(r.status == "ok" for r in rows)
        index = SketchIndex.open(db, save=False)
        assert len(index.graphs["coordinates"]) == len(copies)


def test_a_postgresql_store_that_cannot_be_reached_is_one_line_and_status_2(capsys, server):
    url = server.url("missing").replace("wpf@", "wpf:secret@")
    code = cli.main(["store", "ls", "--store", url])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "missing" in err and "secret" not in err


def test_a_first_schema_sqlite_store_is_upgraded_when_opened_for_writing(tmp_path, fingerprint):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:
        c.execute(
            "CREATE TABLE checkpoints (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, "
            "sha256 TEXT, status TEXT NOT NULL, error TEXT, fingerprint TEXT, updated REAL NOT NULL)"
        )
        import json

        c.execute(
            "INSERT INTO checkpoints VALUES (?, 1, 1.0, NULL, 'ok', NULL, ?, 0.0)",
            ("m", json.dumps(fingerprint.to_dict())),
        )
    with pytest.raises(wf.StoreError, match="first schema"):
        FingerprintStore(path, readonly=True)
    with FingerprintStore(path) as db:
        assert db.get("m").fingerprint().std_vector.tolist() == fingerprint.std_vector.tolist()
        assert [s for s, _ in db.sketches()] == list(db.seqs())


def test_a_damaged_index_is_rebuilt_from_the_store(tmp_path, fingerprint):
    path = tmp_path / "s.db"
    with FingerprintStore(path) as db:
        db.put("a", Stamp(1, 1.0), fingerprint)
        SketchIndex.open(db)
        for f in index_directory(db).glob("*.usearch"):
            f.write_bytes(os.urandom(100))
        assert len(SketchIndex.open(db).graphs["coordinates"]) == 1


def test_the_index_librarys_errors_stay_its_own(tmp_path):
    """The engine's exception translator is local to its module: a damaged usearch file raises
    usearch's error, not one of this package's (the index catches it and rebuilds)."""
    from weightprint_fast.zoo.index import new_graph

    bad = tmp_path / "bad.usearch"
    bad.write_bytes(b"x" * 50)
    with pytest.raises(RuntimeError) as raised:
        new_graph(4).load(str(bad))
    assert not isinstance(raised.value, wf.WeightprintError)


def test_a_current_index_is_mapped_and_still_follows_later_writes(tmp_path, fingerprint):
    with FingerprintStore(tmp_path / "s.db") as db:
        db.put("a", Stamp(1, 1.0), fingerprint)
        SketchIndex.open(db)
        index = SketchIndex.open(db)
        assert index.viewed and len(index.graphs["coordinates"]) == 1
        db.put("b", Stamp(1, 1.0), fingerprint)
        assert index.refresh(db) and not index.viewed and len(index.graphs["coordinates"]) == 2


def test_an_index_left_by_a_deleted_store_of_the_same_name_is_not_taken_for_the_new_one(
    tmp_path, fingerprint, models
):
    path = tmp_path / "s.db"
    with FingerprintStore(path) as db:
        db.put("old", Stamp(1, 1.0), fingerprint)
        SketchIndex.open(db)
    for f in tmp_path.glob("s.db*"):
        if f.is_file():
            f.unlink()
    other = wf.fingerprint(models["family-b"], progress=False)
    with FingerprintStore(path) as db:  # same path, same row count and seq: another store
        db.put("new", Stamp(1, 1.0), other)
        index = SketchIndex.open(db)
        (seq,) = db.seqs()
        found = index.nearest("coordinates", wf.lineage_sketch(other).coordinates, 1)
        assert found[0][0] == seq and found[0][1] > 0.99
