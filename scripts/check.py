"""Run every check CI runs: ruff, mypy --strict, the tests under branch coverage, the docs build.

Usage: ``python scripts/check.py`` from the repository root, in an environment
with the ``dev`` extra installed (``pip install -e '.[dev]'``). Exits non-zero
on the first failing step.
"""

from __future__ import annotations

import os
import subprocess
import sys

STEPS = [
    ["ruff", "check", "."],
    ["ruff", "format", "--check", "."],
    ["mypy"],
    ["coverage", "erase"],
    # One test process per core (pytest-xdist); pytest-cov gathers their coverage into one report.
    ["pytest", "--numprocesses", "auto", "--cov", "--cov-report="],
    ["coverage", "report"],
    ["mkdocs", "build", "--strict", "--quiet", "--site-dir", "site"],
]


def main() -> int:
    """Run each step in turn; stop at the first failure."""
    for step in STEPS:
        command = [sys.executable, "-m", *step]
        print("+", " ".join(step), flush=True)
        result = subprocess.run(command, check=False, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        if result.returncode != 0:
            print(f"FAILED: {' '.join(step)} (exit {result.returncode})", flush=True)
            return result.returncode
    print("All checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
