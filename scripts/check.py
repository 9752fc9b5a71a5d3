"""Run every check CI runs: ruff, mypy --strict, and the tests under branch coverage.

Usage: ``python scripts/check.py`` from the repository root, in an environment
with the ``dev`` extra installed (``pip install -e '.[dev]'``). Exits non-zero
on the first failing step.
"""

from __future__ import annotations

import subprocess
import sys

STEPS = [
    ["ruff", "check", "."],
    ["ruff", "format", "--check", "."],
    ["mypy"],
    ["coverage", "erase"],
    ["coverage", "run", "-m", "pytest"],
    ["coverage", "report"],
]


def main() -> int:
    """Run each step in turn; stop at the first failure."""
    for step in STEPS:
        command = [sys.executable, "-m", *step]
        print("+", " ".join(step), flush=True)
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            print(f"FAILED: {' '.join(step)} (exit {result.returncode})", flush=True)
            return result.returncode
    print("All checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
