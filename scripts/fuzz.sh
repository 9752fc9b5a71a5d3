#!/usr/bin/env bash
# The long fuzzing run (docs/verification.md): the fuzz targets under the `fuzz` hypothesis profile,
# round after round with fresh random cases, until MINUTES (default 30) have passed. Any failure stops it.
# Usage: bash scripts/fuzz.sh [MINUTES]   (from the repository root, with the dev extra installed)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-30}"
end=$(( $(date +%s) + minutes * 60 ))
round=0
started="$(date -u +%FT%TZ)"
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  echo "+ round $round ($(date -u +%T))"
  HYPOTHESIS_PROFILE=fuzz python -m pytest -q -p no:cacheprovider tests/test_fuzz.py tests/test_fuzz_scim.py
done
echo "fuzz: $round rounds from $started to $(date -u +%FT%TZ), every target passed"
