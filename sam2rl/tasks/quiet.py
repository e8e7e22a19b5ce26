"""Lightning's console banners that a user cannot act on, kept out of the recipes' output.

The recipe runners build one `Trainer` per agent, and each prints the same device report ("GPU
available: ...", "TPU available: ..."), an advertisement ("💡 Tip: ... litlogger") and its normal end
("`Trainer.fit` stopped: `max_epochs=N` reached."), and Lightning's own code trips a torch deprecation
(`LeafSpec`). None of that is ours to fix and none of it can be acted on, so `quiet_lightning` drops
exactly those messages while our trainers run; every other message and warning (a real problem, e.g.
"GPU available but not used", which Lightning raises as a warning) still shows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BANNERS", "quiet_lightning"]

BANNERS = (
    "GPU available: ",  # the device report, repeated by every Trainer (the problem case is a warning)
    "TPU available: ",
    "HPU available: ",
    "💡 Tip: ",  # advertisements for Lightning's cloud products
    "`Trainer.fit` stopped: `max_epochs=",  # the normal end of a run that asked for max_epochs iterations
    "`Trainer.fit` stopped: `max_steps=",
    "LOCAL_RANK: ",  # the GPU ids each process sees, printed at every Trainer start
)
"""Starts of the Lightning log messages that `quiet_lightning` drops."""

_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
            "lightning.pytorch.accelerators.cuda")
"""Where Lightning logs them (`rank_zero_info` and the CUDA accelerator's device line)."""


class _DropBanners(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().lstrip().startswith(BANNERS)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within the block, Lightning's `BANNERS` are not logged and the `LeafSpec` deprecation that
    Lightning's own `_pytree` raises (recent torch deprecates a class Lightning still builds) is not
    shown; filters are restored on exit."""
    drop = _DropBanners()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            # not ours: lightning/pytorch/utilities/_pytree.py builds torch's deprecated LeafSpec
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)
