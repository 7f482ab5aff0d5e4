"""Faults a fleet meets while reading: a file truncated under the engine, a FIFO, a process
killed mid-batch. Each ends in one clear line and a status, never a silent crash or a hang."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def big_checkpoint(path, rows=4096, cols=4096):
    save_file({"model.layers.0.mlp.up_proj.weight": np.ones((rows, cols), np.float32)}, str(path))
    return path


def test_a_file_truncated_after_it_was_mapped_is_one_line_naming_it_and_status_2(tmp_path):
    path = big_checkpoint(tmp_path / "model.safetensors")
    script = textwrap.dedent(
        f"""
        import os, weightprint_fast as wf
        shards = wf.open_shards({str(path)!r})          # validated and mapped
        os.truncate({str(path)!r}, 4096)                 # another process shrinks it
        t = shards.tensors[0]
        wf.analyse(shards, [wf.Window(t, t.shape[0], t.shape[1], k=4)])
        print("not reached")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and str(path) in done.stderr and "truncated" in done.stderr
    assert "not reached" not in done.stdout


def test_the_cli_reading_a_file_that_another_process_truncates_ends_with_status_2(tmp_path):
    path = big_checkpoint(tmp_path / "model.safetensors", 8192, 4096)
    cli = subprocess.Popen(
        [sys.executable, "-m", "weightprint_fast", "fingerprint", str(path), "-q", "--method", "exact"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    with open(path, "r+b") as f:
        f.truncate(4096)
    _, err = cli.communicate(timeout=300)
    # Whether it was mapped before the truncation (a SIGBUS) or opened after it (the header's
    # offsets lie past the end), the answer is the same: one line naming the file, status 2.
    assert cli.returncode == 2, err
    assert err.count("\n") == 1 and str(path) in err


def _workers_of(pid: int) -> list[int]:
    """Live spawned worker processes whose parent is ``pid``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(int(proc.name))
    return found


def _killer(stop: threading.Event, once: bool) -> None:
    """Kills every worker of this process as soon as it appears (or only the first one)."""
    killed: set[int] = set()
    while not stop.is_set():
        for w in _workers_of(os.getpid()):
            if w not in killed:
                time.sleep(0.3)  # let it start on a checkpoint
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w, signal.SIGKILL)
                killed.add(w)
                if once:
                    return
        time.sleep(0.05)


def _zoo(tmp_path, n=3):
    from weightprint_fast.apps import demo

    paths = demo.build(tmp_path / "zoo")
    return [str(p) for p in list(paths.values())[:n] if not str(p).endswith("lora")]


def _batch_while_killing(todo, db, once: bool):
    """wf.batch with 2 workers while a thread kills its workers (the first one, or all)."""
    import weightprint_fast as wf

    stop = threading.Event()
    killer = threading.Thread(target=_killer, args=(stop, once))
    killer.start()
    try:
        return wf.batch(todo, db, workers=2, progress=False)
    finally:
        stop.set()
        killer.join()


def test_a_worker_killed_once_is_retried_and_nothing_is_lost(tmp_path):
    todo = _zoo(tmp_path)
    report = _batch_while_killing(todo, tmp_path / "s.db", once=True)
    assert sorted(report.done) == sorted(os.path.realpath(p) for p in todo) and not report.failed


def test_a_checkpoint_whose_worker_always_dies_is_recorded_and_the_batch_ends(tmp_path):
    from weightprint_fast.zoo.store import FingerprintStore

    todo = _zoo(tmp_path, 2)
    report = _batch_while_killing(todo, tmp_path / "s.db", once=False)
    assert not report.done and sorted(report.failed) == sorted(os.path.realpath(p) for p in todo)
    assert all("worker process died" in e for e in report.failed.values())
    with FingerprintStore(tmp_path / "s.db", readonly=True) as s:
        assert {r.status for r in s} == {"error"}


def test_workers_end_when_the_batch_process_is_killed(tmp_path):
    todo = _zoo(tmp_path)
    script = textwrap.dedent(
        f"""
        import weightprint_fast as wf
        wf.batch({todo!r}, {str(tmp_path / "s.db")!r}, workers=2, progress=False, method="exact")
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not _workers_of(parent.pid) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the workers are computing
    workers = _workers_of(parent.pid)
    assert workers
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    alive = [
        w
        for w in workers
        if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
    ]
    assert alive == []


def test_an_address_space_limit_too_low_for_blas_is_a_clear_error_not_a_hang(tmp_path):
    path = big_checkpoint(tmp_path / "model.safetensors", 256, 256)
    script = textwrap.dedent(
        f"""
        import resource, sys
        import sklearn.cluster, scipy.linalg, weightprint_fast
        from weightprint_fast.apps import cli
        size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + (60 << 20), resource.RLIM_INFINITY))
        sys.exit(cli.main(["fingerprint", {str(path)!r}, "-q"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "ulimit -v" in done.stderr


def test_a_huge_one_dimensional_norm_is_not_read(tmp_path):
    """A norm-named tensor of the wrong size is no norm of this model: it is never decoded (a 512
    MB one took 4.8 GB of memory), and the fingerprint is that of the matrices."""
    import weightprint_fast as wf

    rng = np.random.default_rng(0)
    tensors = {
        "model.layers.0.input_layernorm.weight": np.ones(64 << 20, np.float32),  # 256 MB
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((32, 32)).astype(np.float32),
        "model.layers.0.self_attn.k_proj.weight": rng.standard_normal((32, 32)).astype(np.float32),
    }
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"model_type": "llama", "num_attention_heads": 4}')
    script = textwrap.dedent(
        f"""
        import tracemalloc, weightprint_fast as wf
        tracemalloc.start()
        fp = wf.fingerprint({str(tmp_path)!r}, top_k=4, progress=False)
        assert not fp.invariants.norms_folded
        print(tracemalloc.get_traced_memory()[1] >> 20)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # MB allocated at the peak (numpy arrays included): the 256 MB tensor is never decoded (as
    # float64 it would take 512 MB). What the peak does hold is imports (scikit-learn, and pandas
    # where it is installed: about 70 MB in all), so the bound is half the tensor's size.
    assert int(done.stdout.split()[-1]) < 128, done.stdout
    assert wf.fingerprint(tmp_path, top_k=4, progress=False).layers == 1
