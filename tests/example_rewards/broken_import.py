"""A module whose own import fails (a missing dependency): the error must say so, not 'no such module'."""

import sam2rl_missing_dependency_for_tests  # noqa: F401
