#!/usr/bin/env bash
# Mutation testing with mutmut 3 over src/scim_roles (configured in pyproject.toml).
# Usage: bash scripts/mutation.sh   (from the repository root; takes a while, see docs/verification.md)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-mutation
.venv-mutation/bin/python -m pip install --quiet '.[io,scim,serve,hypothesis]' 'mutmut>=3.3,<4' pytest
rm -rf mutants
HYPOTHESIS_PROFILE=mutation .venv-mutation/bin/mutmut run --max-children "$(nproc)"
.venv-mutation/bin/mutmut results > mutation-results.txt || true
echo "Survivors: $(grep -c survived mutation-results.txt || true) (listed in mutation-results.txt)"
