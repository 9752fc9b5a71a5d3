#!/usr/bin/env bash
# Mutation testing with mutmut 3 over src/scim_roles (configured in pyproject.toml).
# Usage: bash scripts/mutation.sh [MUTANT-NAME-OR-GLOB ...]
#   (from the repository root; takes a while, see docs/verification.md). Names narrow the run, as
#   `mutmut run` takes them: "scim_roles._domains.*". mutmut keeps its results in mutants/ between runs
#   of the same configuration: delete it to start again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-mutation
.venv-mutation/bin/python -m pip install --quiet '.[io,scim,serve,hypothesis]' 'mutmut>=3.3,<4' pytest
# stdin from /dev/null: a forked child that read the terminal would wait on it for ever.
HYPOTHESIS_PROFILE=mutation .venv-mutation/bin/mutmut run --max-children "$(nproc)" "$@" < /dev/null
.venv-mutation/bin/mutmut results > mutation-results.txt || true
echo "Survivors: $(grep -c survived mutation-results.txt || true) (listed in mutation-results.txt)"
