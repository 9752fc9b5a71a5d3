"""Hypothesis profiles: ``dev`` by default, ``ci`` in CI, ``thorough`` and ``fuzz`` on demand, ``mutation`` for mutmut.

Choose one with ``HYPOTHESIS_PROFILE=thorough python -m pytest``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
# CI machines vary in speed: a slow one must not fail a run that a fast one passes.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    print_blob=True,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A long fuzzing run, by hand (docs/verification.md): many more cases per fuzz target and property.
settings.register_profile(
    "fuzz", max_examples=50_000, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
settings.register_profile("mutation", max_examples=30, deadline=None, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
