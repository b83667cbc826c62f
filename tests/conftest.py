"""Hypothesis profiles.  'ci' (the default, and what `make test` runs): every
property test draws the same examples on every run (derandomized, no example
database), so CI is repeatable.  'long' (HYPOTHESIS_PROFILE=long): fresh random
examples, remembered in .hypothesis/, and HYPOTHESIS_EXAMPLES_FACTOR (default
10) times as many (tests.helpers.examples), for a search by hand."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("long", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
