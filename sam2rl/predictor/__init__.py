"""`SAM2RLVideoPredictor`: sam2's `SAM2VideoPredictor`, with a memory controller deciding what the bank keeps."""

from sam2rl.predictor.predictor import SAM2RLVideoPredictor

__all__ = ["SAM2RLVideoPredictor"]
