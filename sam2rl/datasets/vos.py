"""The DAVIS / MOSE / LVOS / YouTube-VOS conventions that the sequence and dataset readers share.

Layout::

    ROOT/JPEGImages/[<resolution>/]<seq>/<int>.jpg
    ROOT/Annotations/[<resolution>/]<seq>/<int>.png

DAVIS has a resolution level (``480p``) and masks on every frame; MOSE and YouTube-VOS
(``train/``, ``valid/``) have none, and their masks are sparse: YouTube-VOS keeps every 5th
frame (``00000``, ``00005``, ...; all frames in ``valid_all_frames/``), the validation sets
annotate only where an object first appears. Frame numbers may skip or start anywhere;
an annotation belongs to the frame with its number. Frames and annotations may come from
different roots. Other files (``meta.json``, ``ImageSets/``) are not needed: objects and
their first frames are read from the masks.

Mask conventions:

* Palette PNGs (PIL mode ``"P"``): the pixel value is the object id, 0 is background and
  255 is the DAVIS-2017 "void" label (unlabelled border pixels), which is mapped to
  background (0). Object ids are therefore 1..254.
* Grayscale PNGs (mode ``"L"`` or ``"1"``): one object, id 1, where pixel > 127.

Frames are normalised as SAM 2 normalises them (:func:`normalize_image`), and bad input of
any kind is a :class:`DatasetError` naming the file or sequence at fault.
"""

from __future__ import annotations

import torch

from sam2rl.errors import InputError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VOID_ID", "DatasetError", "normalize_image"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: Palette value that DAVIS-2017 uses for "void" pixels; read as background.
VOID_ID: int = 255


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [0, 1] -> the network's input, as sam2 normalises: in float32, after a
    float64 array is copied into a float32 buffer."""
    x = image.to(torch.float32)
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


class DatasetError(InputError, ValueError):
    """Bad dataset input; the message names the file or sequence at fault."""
