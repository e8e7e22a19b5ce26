"""sam2rl: learn which memories SAM 2 keeps, with reinforcement learning."""

__version__ = "0.1.0"
