"""How hard the property tests search, decided in one place (imported by conftest.py)."""

import os

import pytest
from hypothesis import HealthCheck, settings

# One place decides how hard the property tests search: $GANCORE_HYPOTHESIS_PROFILE picks "fast" (the
# default, for a developer's run), "ci" (what .ci/run uses) or "soak" (a long hunt). Test files set
# no example counts of their own; the random-valid-input soak of the reliability suite scales with
# the profile through SOAK_EXAMPLES.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fast", max_examples=100, **_COMMON)
settings.register_profile("ci", max_examples=300, **_COMMON)
settings.register_profile("soak", max_examples=3000, **_COMMON)
HYPOTHESIS_PROFILE = os.environ.get("GANCORE_HYPOTHESIS_PROFILE", "fast")
if HYPOTHESIS_PROFILE not in ("fast", "ci", "soak"):
    raise pytest.UsageError(f"GANCORE_HYPOTHESIS_PROFILE must be fast, ci or soak; got {HYPOTHESIS_PROFILE!r}")
settings.load_profile(HYPOTHESIS_PROFILE)
# Random valid inputs per kernel in tests/reliability/test_random_valid_inputs.py. CI keeps the
# 10,000 that found the float32-subnormal and big-endian bugs; $GANCORE_RELIABILITY_EXAMPLES overrides.
SOAK_EXAMPLES = int(
    os.environ.get("GANCORE_RELIABILITY_EXAMPLES") or {"fast": 2000, "ci": 10000, "soak": 100000}[HYPOTHESIS_PROFILE]
)
