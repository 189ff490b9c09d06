"""Code style that ruff does not check: continuation lines aligned with their opening bracket
(pycodestyle's E127, E128 and E131, configured in setup.cfg's [pycodestyle] section). The rest of
the style is ruff's (ruff.toml), run by .ci/run before the tests."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_continuation_lines_are_aligned_with_their_opening_bracket():
    completed = subprocess.run([sys.executable, "-m", "pycodestyle", "dlcore", "cli", "datasets",
                                "tests"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]

