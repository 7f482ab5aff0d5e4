"""The ``weightprint`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from . import __version__  # noqa: F401
from ._native import WeightprintFormatError
from .safetensors_files import open_shards

EXIT_USAGE = 2


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def cmd_inspect(args: argparse.Namespace) -> int:
    shards = open_shards(args.path)
    rows = [
        {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "shard": shards.paths[t.shard].name}
        for t in shards.tensors
    ]
    if args.json:
        json.dump({"shards": [str(p) for p in shards.paths], "tensors": rows}, sys.stdout, indent=2)
        print()
    else:
        print(_table(["name", "dtype", "shape", "shard"],
                     [[r["name"], r["dtype"], "x".join(map(str, r["shape"])) or "scalar", r["shard"]] for r in rows]))
        print(f"\n{len(rows)} tensors in {len(shards.paths)} shard(s), {shards.total_bytes / 1e6:.1f} MB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weightprint", description="Fingerprint LLM checkpoints from their weights.")
    p.add_argument("--version", action="version", version=f"weightprint-fast {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("inspect", help="list the tensors of a checkpoint (name, dtype, shape, shard)")
    sp.add_argument("path", help="a .safetensors file, a directory of shards, or an index JSON")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_inspect)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("weightprint: interrupted", file=sys.stderr)
        return 130
    except (WeightprintFormatError, FileNotFoundError, ValueError, OSError) as e:
        if args.debug:
            raise
        print(f"weightprint: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
