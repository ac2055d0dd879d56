"""Test-wide settings: in CI, hypothesis explores the same examples every run.

Locally, property tests keep searching new examples (that is how they find bugs); in CI
a landing must not depend on which random examples one run happened to draw.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
