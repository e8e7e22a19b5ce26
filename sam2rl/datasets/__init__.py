"""Video object segmentation datasets in the DAVIS / MOSE / LVOS / YouTube-VOS layout."""

from sam2rl.datasets.dataset import VideoDataset
from sam2rl.datasets.sequence import Track, VideoSequence, group_by_prompt_frame
from sam2rl.datasets.vos import IMAGENET_MEAN, IMAGENET_STD, VOID_ID, DatasetError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VOID_ID", "DatasetError", "Track", "VideoDataset", "VideoSequence",
           "group_by_prompt_frame"]
