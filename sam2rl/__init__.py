"""sam2rl: learn which memories SAM 2 keeps, with reinforcement learning."""

__version__ = "0.1.0"


def load_agent(path, tracker=None, force=False):
    """A trained agent as a memory controller (see `sam2rl.agents.load_agent`)."""
    from sam2rl.agents import load_agent as _load

    return _load(path, tracker, force)
