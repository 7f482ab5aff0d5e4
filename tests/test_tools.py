"""The repository's tools: they refuse to destroy what they did not make."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "build_wheels.sh"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="tools/ is not beside these tests (an installed-wheel run)")
def test_build_wheels_refuses_a_directory_holding_other_files(tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "holds files other than wheels" in done.stderr
    assert keep.read_text() == "mine"
