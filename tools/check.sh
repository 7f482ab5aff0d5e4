#!/usr/bin/env bash
# The habits, checked: lint, format, types, the native engine tests (ctest), and an ASan/UBSan
# build of the engine running every test file. Run it in an environment with
# the test and dev extras: pip install ".[test,dev]" && tools/check.sh
#
# Usage: tools/check.sh [--no-sanitizers]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- ruff (lint, format), mypy, clang-format"
ruff check .
ruff format --check .
mypy
clang-format --dry-run --Werror cpp/*.cpp cpp/*.hpp tests/native/*.cpp tests/native/*.hpp

if [[ "${1:-}" == "--no-sanitizers" ]]; then exit 0; fi

echo "--- native engine tests (doctest, ctest), built with ASan + UBSan"
native=build/native-sanitize
cmake -S . -B "$native" -DWPF_PYTHON=OFF -DWPF_NATIVE_TESTS=ON -DWPF_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build "$native" > /dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$native" --output-on-failure -j2 | tail -3

echo "--- ASan + UBSan build of the engine, every test file run against it"
# Into a throw-away environment that sees this one's packages: the sanitized build never
# replaces the installed one.
san=$(mktemp -d /tmp/wpf-asan.XXXXXX)
trap 'rm -rf "$san"' EXIT
python -m venv --system-site-packages "$san/venv"
python -c "import site; print('\n'.join(site.getsitepackages()))" > "$san/venv/lib/$(ls "$san/venv/lib")/site-packages/parent.pth"
"$san/venv/bin/python" -m pip install -q --no-deps . \
  -C cmake.define.WPF_SANITIZE=ON -C build-dir=build/sanitize 2>&1 | grep -v "^WARNING: Location" || true
repo=$(pwd)
(
  cd "$san"  # tests import the installed (sanitized) package, not the source tree
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  "$san/venv/bin/python" -c "import weightprint_fast as w; assert w.__file__.startswith('$san'), w.__file__"
  "$san/venv/bin/python" -m pytest -q -p no:cacheprovider "$repo"/tests
)
