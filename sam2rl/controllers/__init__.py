"""Memory controllers: SAM 2's FIFO rule and everything that replaces it, and the one resolver by name."""

from sam2rl.controllers.base import Controller, ControllerError
from sam2rl.controllers.dam4sam import Dam4SamController
from sam2rl.controllers.fifo import FifoController
from sam2rl.controllers.oracle import OracleController
from sam2rl.controllers.pathways import PathwaySearch, track_video_sam2long
from sam2rl.controllers.random_actions import RandomController
from sam2rl.controllers.registry import CONTROLLERS, make_controller, register_controller, register_prefix
from sam2rl.controllers.sam2long import Sam2LongController
from sam2rl.controllers.samurai import SamuraiController
from sam2rl.controllers.search import ScheduleSearch
from sam2rl.controllers.tracking import track_video

__all__ = [
    "CONTROLLERS", "Controller", "ControllerError", "Dam4SamController", "FifoController", "OracleController",
    "PathwaySearch", "RandomController", "Sam2LongController", "SamuraiController", "ScheduleSearch",
    "make_controller", "register_controller", "register_prefix", "track_video", "track_video_sam2long",
]
