"""A user's own reward package, as the README's "Adding a reward" describes (used by the tests)."""
