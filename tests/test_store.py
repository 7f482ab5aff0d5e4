"""The store under faults: a damaged, foreign or missing store file is one StoreError (CLI: one
line, status 2); reading a store writes nothing to it."""

import sqlite3

import pytest

import weightprint_fast as wf
from weightprint_fast.apps import cli, demo
from weightprint_fast.zoo.store import FingerprintStore


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    paths = demo.build(root / "models")
    db = root / "zoo.db"
    wf.batch([paths["family-a"], paths["family-b"]], db, workers=1, progress=False)
    with sqlite3.connect(db) as c:  # fold the write-ahead log in, so the file alone is the store
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, paths


def corrupted(tmp_path, data: bytes):
    p = tmp_path / "bad.db"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "data",
    [b"not a database at all, just text\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000, b""],
    ids=["text", "damaged-header", "empty"],
)
def test_a_file_that_is_not_a_store_is_a_store_error(tmp_path, data):
    path = corrupted(tmp_path, data)
    with pytest.raises(wf.StoreError, match="bad.db"):
        FingerprintStore(path, readonly=True)


def test_a_sqlite_file_without_the_checkpoints_table_is_not_a_store(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(wf.StoreError, match="not a fingerprint store"):
        FingerprintStore(path)


def test_a_truncated_store_is_one_line_and_status_2(capsys, tmp_path, store):
    db, _ = store
    path = corrupted(tmp_path, db.read_bytes()[: len(db.read_bytes()) // 2])
    code = cli.main(["store", "ls", "--store", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bad.db" in err


def test_listing_a_store_writes_nothing(store):
    db, _ = store
    before = db.read_bytes()
    with FingerprintStore(db, readonly=True) as s:
        assert len(list(s)) == 2
    assert db.read_bytes() == before
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0


def test_a_readonly_store_refuses_writes_with_a_store_error(store):
    db, _ = store
    with FingerprintStore(db, readonly=True) as s, pytest.raises(wf.StoreError, match="cannot write"):
        s.remove("anything")


def test_search_in_a_missing_store_is_an_error_and_creates_nothing(capsys, tmp_path, store):
    _, paths = store
    typo = tmp_path / "typo.db"
    code = cli.main(["search", str(paths["family-a"]), "--store", str(typo), "-q"])
    assert code == 2 and "no such store" in capsys.readouterr().err and not typo.exists()


def test_batch_into_a_damaged_store_stops_with_status_2(capsys, tmp_path, store):
    _, paths = store
    path = corrupted(tmp_path, b"SQLite format 3\x00" + b"\x00" * 100)
    code = cli.main(["batch", str(paths["family-a"]), "--store", str(path), "-q", "--workers", "1"])
    assert code == 2 and "bad.db" in capsys.readouterr().err


def test_a_store_in_a_missing_directory_is_one_line_and_status_2(capsys, tmp_path, store):
    _, paths = store
    target = tmp_path / "no" / "such" / "dir" / "zoo.db"
    code = cli.main(["batch", str(paths["family-a"]), "--store", str(target), "-q", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot open the fingerprint store" in err


def test_a_full_disk_while_storing_is_a_store_error_not_a_traceback(tmp_path, store):
    """The file-size limit stands in for a full disk: SQLite's write fails the same way."""
    import subprocess
    import sys
    import textwrap

    _, paths = store
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from weightprint_fast.apps import cli
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        sys.exit(cli.main(["batch", {str(paths["family-a"])!r}, {str(paths["family-b"])!r},
                           "--store", {str(tmp_path / "full.db")!r}, "-q", "--workers", "1"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "full.db" in done.stderr and "Traceback" not in done.stderr
