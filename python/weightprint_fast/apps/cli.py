"""The ``weightprint`` command line.

Exit status: 0 success (for ``compare``: the first model's closest verdict is related, see
:class:`Verdict`), 1 an internal error (a bug: ``--debug`` shows the traceback), 2 usage or input
error (any :class:`WeightprintError`: one line on stderr), 3 not related (unrelated, or an adapter
of other shapes), 4 undetermined (or an adapter that fits but names another base), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from .._version import __version__
from ..compare.legend import COMPARISON_COLUMNS, SEARCH_COLUMNS
from ..compare.verdict import exit_status
from ..engine.analyse import TensorFileSet
from ..errors import ConfigError, InputError, StoreError, WeightprintError
from ..readers import locate, open_tensor_files
from ..settings import Settings
from .text import printable

EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141

_COMMON_EXITS = "2 bad input (one line on stderr), 1 a bug (--debug shows the traceback), 130 interrupted"
EXITS = f"exit status: 0 done, {_COMMON_EXITS}"
BATCH_EXITS = (
    f"exit status: 0 every checkpoint fingerprinted or unchanged, 2 some failed (listed), {_COMMON_EXITS}"
)
COMPARE_EXITS = (
    "exit status (the first model's closest verdict): 0 related (same-model, same-family/derived, "
    "adapter-of), 3 not related (unrelated, adapter-for-other-shapes), 4 undetermined (or "
    f"adapter-fits), {_COMMON_EXITS}"
)


NAME_MAP_HELP = "JSON file {regex with (?P<layer>\\d+): type} for unknown naming schemes"


def _fingerprint_options(p: argparse.ArgumentParser) -> None:
    d, choices = Settings(), Settings.CHOICES
    g = p.add_argument_group("fingerprint settings")
    g.add_argument(
        "--top-k", type=int, default=d.top_k, help=f"singular values per matrix (default {d.top_k})"
    )
    g.add_argument(
        "--clusters", type=int, default=d.n_clusters, help=f"K of K-Means (default {d.n_clusters})"
    )
    g.add_argument(
        "--normalize", default=d.normalize, choices=choices["normalize"], help="SD-vector normalization"
    )
    g.add_argument(
        "--feature", default=d.feature, choices=choices["feature"], help="Clustering-Vector features"
    )
    g.add_argument("--method", default=d.method, choices=choices["method"], help="singular-value method")
    g.add_argument(
        "--tol",
        type=float,
        default=d.tol,
        help=f"relative error that auto certifies on every singular value (default {d.tol:g})",
    )
    g.add_argument("--threads", type=int, default=d.threads, help="engine threads (default: usable cores)")
    g.add_argument(
        "--nonfinite",
        default=d.nonfinite,
        choices=choices["nonfinite"],
        help="matrices with NaN/Inf: left out of the CV and reported, or refused",
    )
    g.add_argument(
        "--name-map",
        type=Path,
        default=None,
        help=NAME_MAP_HELP,
    )
    g.add_argument(
        "--download",
        action="store_true",
        help="fetch an org/name[@rev][/file.gguf] reference missing from the Hugging Face cache "
        "(weights, config and tokenizer files only; never by default)",
    )


def _name_patterns(args: argparse.Namespace) -> Optional[dict]:
    """The --name-map file's rules, or None."""
    patterns = None
    if args.name_map is not None:
        try:
            patterns = json.loads(args.name_map.read_text(encoding="utf-8"))
        except OSError as e:
            raise InputError(f"--name-map {args.name_map}: cannot read: {e.strerror or e}") from e
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"--name-map {args.name_map}: not JSON: {e}") from e
        if not isinstance(patterns, dict) or not all(isinstance(v, str) for v in patterns.values()):
            raise ConfigError(f"--name-map {args.name_map}: expected a JSON object {{regex: type}}")
    return patterns


def _settings(args: argparse.Namespace) -> Settings:
    patterns = _name_patterns(args)
    return Settings(
        top_k=args.top_k,
        n_clusters=args.clusters,
        normalize=args.normalize,
        feature=args.feature,
        method=args.method,
        tol=args.tol,
        threads=args.threads,
        nonfinite=args.nonfinite,
        name_patterns=patterns,
        progress=_progress(args),
        download=args.download,
    )


def _progress(args: argparse.Namespace) -> Optional[bool]:
    """-q: never; --progress: always; else on a terminal only (None)."""
    return False if args.quiet else (True if args.progress else None)


def _load_all(paths: Sequence[str], args: argparse.Namespace) -> list:
    from ..compare import as_fingerprint

    settings = _settings(args)
    return [as_fingerprint(p, settings) for p in paths]


def _check_output(out: Optional[Path], many: bool) -> None:
    """Refuses an -o target that cannot be written, before any work is done."""
    if out is None:
        return
    directory = out.parent if out.suffix == ".json" and not many else out
    existing = next((d for d in (directory, *directory.parents) if d.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"-o {out}: cannot write there ({existing or directory} is not a writable directory)"
        )


def _check_file_output(out: Path, suffix: str) -> None:
    """Refuses an -o file of the wrong kind, or in a directory that cannot be written, before any
    work is done."""
    if out.suffix.lower() != suffix:
        raise InputError(f"-o {out}: the output is a {suffix} file (name it *{suffix})")
    if out.is_dir():
        raise InputError(f"-o {out}: is a directory, not a {suffix} file")
    parent = out.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"-o {out}: cannot write there ({parent} is not a writable directory)")


def _output_path(out: Optional[Path], fp, many: bool) -> Optional[Path]:
    if out is None:
        return None
    if out.suffix == ".json" and not many:
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{fp.name}.fingerprint.json"


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from .report import fingerprint_table

    _check_output(args.output, len(args.paths) > 1)
    fps = _load_all(args.paths, args)
    for fp in fps:
        target = _output_path(args.output, fp, len(fps) > 1)
        if target is not None:
            fp.save(target)
            if not args.quiet:
                print(f"wrote {target}", file=sys.stderr)
    if args.json:
        json.dump([fp.to_dict() for fp in fps] if len(fps) > 1 else fps[0].to_dict(), sys.stdout)
        print()
    else:
        print("\n\n".join(fingerprint_table(fp) for fp in fps))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare, compare_many
    from .report import comparison_lines, comparison_table, matrix_table

    fps = _load_all(args.models, args)
    first = [compare(fps[0], fp) for fp in fps[1:]]
    if args.json:
        out: dict = {"comparisons": [c.to_dict() for c in first]}
        if len(fps) > 2:
            cm = compare_many(fps)
            out["names"] = cm.names
            out["families"] = cm.families
            out["signals"] = {
                k: [[None if v != v else float(v) for v in row] for row in m] for k, m in cm.signals.items()
            }
            out["verdicts"] = cm.verdicts
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        print(comparison_table(first))
        for c in first:
            print(comparison_lines(c))
        if len(fps) > 2:
            print()
            print(matrix_table(compare_many(fps)))
    return exit_status([c.verdict for c in first])


def cmd_plot(args: argparse.Namespace) -> int:
    from .report import plot

    _check_file_output(args.output, ".png")
    path = plot(_load_all(args.models, args), args.output)
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def _projections(shards: TensorFileSet, args: argparse.Namespace) -> dict[str, str]:
    """Tensor name -> "layer N type" for the projection matrices naming.py recognizes (with
    --name-map); none where no tensor matches a known scheme."""
    from ..errors import UnknownArchitectureError
    from ..naming import map_tensors

    try:
        mapped = map_tensors([(t.name, t.shape) for t in shards.tensors], None, _name_patterns(args))
    except UnknownArchitectureError:
        return {}
    out = {}
    for mt in mapped:
        layers = sorted({p.layer for p in mt.parts})
        types = sorted({p.type for p in mt.parts})
        where = f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}-{layers[-1]}"
        out[mt.name] = f"{where} {'+'.join(types)}"
    return out


def cmd_report(args: argparse.Namespace) -> int:
    from ..compare import compare, compare_many
    from .html_report import write_report

    _check_file_output(args.output, ".html")
    fps = _load_all(args.models, args)
    comparisons = [compare(fps[0], fp) for fp in fps[1:]]
    path = write_report(fps, args.output, comparisons, compare_many(fps) if len(fps) > 2 else None)
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return exit_status([c.verdict for c in comparisons])


def cmd_inspect(args: argparse.Namespace) -> int:
    from .report import table

    shards = open_tensor_files(locate(args.path))
    projections = _projections(shards, args)
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "dtype": t.dtype,
            "shape": list(t.shape),
            "shard": shards.paths[t.shard].name,
            "projection": projections.get(t.name),
        }
        for t in shards.tensors
    ]
    if args.json:
        json.dump({"shards": [str(p) for p in shards.paths], "tensors": rows}, sys.stdout, indent=2)
        print()
    else:
        print(
            table(
                ["name", "dtype", "shape", "shard", "projection"],
                [
                    [
                        r["name"],
                        r["dtype"],
                        "x".join(map(str, r["shape"])) or "scalar",
                        r["shard"],
                        r["projection"],
                    ]
                    for r in rows
                ],
            )
        )
        print(f"\n{len(rows)} tensors in {len(shards.paths)} shard(s), {shards.total_bytes / 1e6:.1f} MB")
        print(
            "  projection: the layer and projection type (q k v o gate up down) the fingerprint reads it as"
        )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="weightprint-demo-"))
    try:
        return _demo(args, root, demo.build(root))
    finally:
        if not args.dir:  # its own directory: the checkpoints go, the plot stays
            for p in root.iterdir():
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)


def _demo(args: argparse.Namespace, root: Path, paths: dict[str, Path]) -> int:
    from ..compare import compare, compare_many
    from ..fingerprint import fingerprint
    from .report import comparison_lines, comparison_table, fingerprint_table, matrix_table, plot

    fps = []
    for name, p in paths.items():
        fps.append(fingerprint(p, progress=_progress(args)).renamed(name))
    base = fps[0]
    comparisons = [compare(base, fp) for fp in fps[1:]]
    cm = compare_many(fps)
    # Plotting is an extra (matplotlib weighs ~40 MB and 0.5 s of import): without it the demo
    # still prints everything and says how to get the picture.
    try:
        png: Optional[Path] = plot(fps, root / "demo.png", matrix=cm)
        plot_note = f"plot: {png}"
    except ImportError:
        png = None
        plot_note = (
            "plot: skipped (matplotlib is not installed; "
            "pip install 'weightprint-fast[plot]' to get demo.png)"
        )
    if args.json:
        json.dump(
            {
                "checkpoints": {k: str(v) for k, v in paths.items()},
                "comparisons": [c.to_dict() for c in comparisons],
                "families": cm.families,
                "plot": None if png is None else str(png),
            },
            sys.stdout,
            indent=2,
        )
        print()
        return EXIT_OK
    kept = "" if args.dir else " (removed when the demo ends; --dir DIR keeps them)"
    print(f"Demo checkpoints in {root}{kept}\n")
    print(fingerprint_table(base) + "\n")
    print(comparison_table(comparisons) + "\n")
    for c in comparisons:
        print(comparison_lines(c))
    print()
    print(matrix_table(cm) + "\n")
    print(plot_note)
    return EXIT_OK


def _read_paths(args: argparse.Namespace) -> list[str]:
    paths = list(args.paths)
    if args.from_file is not None:
        try:
            listed = args.from_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"--from-file {args.from_file}: cannot read: {e}") from e
        paths += [line.strip() for line in listed if line.strip()]
    if not paths:
        raise InputError("no checkpoints given (PATHS or --from-file)")
    return paths


def cmd_batch(args: argparse.Namespace) -> int:
    from ..zoo.store import display_name
    from .batch import batch

    report = batch(
        _read_paths(args),
        args.store,
        workers=args.workers,
        cluster=args.cluster,
        verify=args.verify,
        progress=_progress(args),
        settings=_settings(args).replace(progress=False),
    )
    if args.json:
        json.dump(
            {"done": report.done, "skipped": report.skipped, "failed": report.failed}, sys.stdout, indent=2
        )
        print()
    else:
        print(
            f"{len(report.done)} fingerprinted, {len(report.skipped)} unchanged, {len(report.failed)} failed "
            f"-> {display_name(args.store)}"
        )
        for path, error in report.failed.items():
            print(f"  failed: {path}: {error}")
    return EXIT_OK if not report.failed else EXIT_USAGE


def cmd_search(args: argparse.Namespace) -> int:
    from ..zoo.search import search
    from .report import search_table

    hits = search(args.query, args.store, top=args.top, candidates=args.candidates, settings=_settings(args))
    if args.json:
        json.dump(
            [{"path": h.path, "score": h.score, **h.comparison.to_dict()} for h in hits], sys.stdout, indent=2
        )
        print()
    else:
        print(search_table(hits))
    return EXIT_OK


def cmd_store(args: argparse.Namespace) -> int:
    from ..zoo.store import FingerprintStore, is_url
    from .report import table

    if not is_url(args.store) and not Path(args.store).is_file():
        raise StoreError(f"{args.store}: no such store")
    with FingerprintStore(args.store, readonly=args.action != "rm") as db:
        if args.action == "ls":
            rows = list(db)
            if args.json:
                json.dump(
                    [{"path": r.path, "status": r.status, "error": r.error, "size": r.size} for r in rows],
                    sys.stdout,
                    indent=2,
                )
                print()
            else:
                print(
                    table(
                        ["model", "status", "size", "error"],
                        [[r.path, r.status, f"{r.size / 1e6:.1f} MB", r.error] for r in rows],
                    )
                )
        elif args.action == "rm":
            missing = [p for p in args.items if not db.remove(p) and not db.remove(str(Path(p).resolve()))]
            if missing:
                raise InputError(f"not in the store: {', '.join(missing)}")
        else:
            if not args.items:
                raise InputError("store export needs a target directory")
            files = db.export(args.items[0])
            print(f"exported {len(files)} fingerprints to {args.items[0]}")
    return EXIT_OK


STORE_HELP = "an SQLite file (created if missing) or a postgresql://user@host/db URL (the postgresql extra)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="weightprint", description="Fingerprint LLM checkpoints from their weights."
    )
    p.add_argument("--version", action="version", version=f"weightprint-fast {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes on stderr")
    common.add_argument(
        "--progress",
        action="store_true",
        help="progress bars on stderr even when it is not a terminal (default: terminal only)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(
        name: str, summary: str, exits: str = EXITS, columns: Sequence[tuple[str, str]] = ()
    ) -> argparse.ArgumentParser:
        legend = "".join(f"\n  {h}: {text}" for h, text in columns)
        return sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=(f"columns of the table:{legend}\n\n" if columns else "") + textwrap.fill(exits, 78),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    sp = command("fingerprint", "fingerprint checkpoints")
    sp.add_argument(
        "paths", nargs="+", help="safetensors file/directory/index, GGUF file, or LoRA adapter directory"
    )
    sp.add_argument("-o", "--output", type=Path, help="a .json file (one checkpoint) or a directory")
    sp.add_argument("--json", action="store_true", help="print the fingerprint(s) as JSON")
    _fingerprint_options(sp)
    sp.set_defaults(func=cmd_fingerprint)

    sp = command(
        "compare",
        "compare the first model with the others: lineage verdicts and signals",
        COMPARE_EXITS,
        COMPARISON_COLUMNS,
    )
    sp.add_argument(
        "models", nargs="+", metavar="MODEL", help="checkpoints or saved fingerprint JSON files (2 or more)"
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    _fingerprint_options(sp)
    sp.set_defaults(func=cmd_compare)

    sp = command("plot", "plot SD vectors and CV (with their units) and the verdicts of every pair")
    sp.add_argument("models", nargs="+", metavar="MODEL", help="checkpoints or saved fingerprint JSON files")
    sp.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    _fingerprint_options(sp)
    sp.set_defaults(func=cmd_plot)

    sp = command(
        "report",
        "write one self-contained HTML report: verdicts with their evidence and nulls, the matrix, the plot",
        COMPARE_EXITS,
    )
    sp.add_argument(
        "models", nargs="+", metavar="MODEL", help="checkpoints or saved fingerprints (2 or more)"
    )
    sp.add_argument("-o", "--output", type=Path, required=True, help="the .html file to write")
    _fingerprint_options(sp)
    sp.set_defaults(func=cmd_report)

    sp = command("inspect", "list the tensors of a safetensors or GGUF checkpoint")
    sp.add_argument("path", help="a .safetensors file, a directory of shards, an index JSON, or a GGUF file")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--name-map", type=Path, help=NAME_MAP_HELP)
    sp.set_defaults(func=cmd_inspect)

    sp = command("batch", "fingerprint many checkpoints into a store (resumable)", BATCH_EXITS)
    sp.add_argument("paths", nargs="*", metavar="PATH", help="checkpoints")
    sp.add_argument("--from-file", type=Path, help="a file listing checkpoints, one per line")
    sp.add_argument("--store", required=True, help=STORE_HELP)
    sp.add_argument("--workers", type=int, help="local worker processes (default: cores // 2)")
    sp.add_argument("--cluster", help="Dask scheduler address (tcp://host:8786) instead of local workers")
    sp.add_argument(
        "--verify", action="store_true", help="detect changed files by sha256, not size and mtime"
    )
    sp.add_argument("--json", action="store_true", help="machine-readable summary")
    _fingerprint_options(sp)
    sp.set_defaults(func=cmd_batch)

    sp = command("search", "rank the stored models by closeness to a model", EXITS, SEARCH_COLUMNS)
    sp.add_argument("query", help="a checkpoint or a saved fingerprint")
    sp.add_argument("--store", required=True, help=STORE_HELP)
    sp.add_argument("--top", type=int, default=10, help="how many models to list")
    sp.add_argument(
        "--candidates",
        type=int,
        help="models the index proposes for exact comparison (default 32 by token sketch, 16 by coordinates)",
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    _fingerprint_options(sp)
    sp.set_defaults(func=cmd_search)

    sp = command("store", "list, remove or export stored fingerprints")
    sp.add_argument("action", choices=("ls", "rm", "export"))
    sp.add_argument("items", nargs="*", help="rm: checkpoint paths; export: target directory")
    sp.add_argument("--store", required=True, help=STORE_HELP)
    sp.add_argument("--json", action="store_true", help="machine-readable output (ls)")
    sp.set_defaults(func=cmd_store)

    sp = command("demo", "build synthetic checkpoints, fingerprint and compare them")
    sp.add_argument("--dir", help="where to build them (default: a new temporary directory)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare" and len(args.models) < 2:
        parser.error("compare needs at least two models")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("weightprint: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a killed pipe would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except (WeightprintError, OSError) as e:  # bad input, or the system refused a file: one line
        if args.debug:
            raise
        print(f"weightprint: error: {printable(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:
        if args.debug:
            raise
        print(
            f"weightprint: internal error ({type(e).__name__}: {printable(str(e))}); this is a bug: "
            "rerun with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
