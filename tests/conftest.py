"""Suite-wide settings: Hypothesis profiles (HYPOTHESIS_PROFILE=deep for long runs)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# "ci" is derandomized: the same examples every run, so a CI run fails only for a change
# in the code, never for the luck of the draw; "deep" draws anew and looks much further.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
