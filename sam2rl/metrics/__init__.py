"""Video object segmentation metrics: pure functions on masks that any layer may import.

:mod:`sam2rl.metrics.frame` scores one frame (J, F, presence), batched in torch;
:mod:`sam2rl.metrics.track` reduces one object's per-frame scores to the figures reports show
(SAM2RL tracking quality, DAVIS means, the DAVIS 2017 toolkit's mean, recall and decay).
"""

from sam2rl.metrics.frame import (MaskLike, boundary_f, boundary_precision_recall, boundary_tolerance, dilate_disk,
                                  disk_kernel, iou, j_and_f, presence_accuracy, seg2bmap)
from sam2rl.metrics.track import (Davis2017Scores, TrackScores, davis2017_scores, db_statistics, score_track,
                                  score_tracks, summarise_track)

__all__ = [
    "Davis2017Scores",
    "MaskLike",
    "TrackScores",
    "boundary_f",
    "boundary_precision_recall",
    "boundary_tolerance",
    "davis2017_scores",
    "db_statistics",
    "dilate_disk",
    "disk_kernel",
    "iou",
    "j_and_f",
    "presence_accuracy",
    "score_track",
    "score_tracks",
    "seg2bmap",
    "summarise_track",
]
