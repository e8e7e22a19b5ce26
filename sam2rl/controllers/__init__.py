"""Memory controllers: SAM 2's FIFO rule and everything that replaces it."""

from sam2rl.controllers.base import CONTROLLERS, Controller, build_controller, make_controller, register_controller
from sam2rl.controllers.dam4sam import Dam4SamController
from sam2rl.controllers.fifo import FifoController
from sam2rl.controllers.oracle import OracleController
from sam2rl.controllers.random_actions import RandomController
from sam2rl.controllers.sam2long import Sam2LongController, track_video_sam2long
from sam2rl.controllers.samurai import SamuraiController
from sam2rl.controllers.search import ScheduleSearch

__all__ = [
    "CONTROLLERS", "Controller", "Dam4SamController", "FifoController", "OracleController", "RandomController",
    "Sam2LongController", "SamuraiController", "ScheduleSearch", "build_controller", "make_controller", "register_controller", "track_video_sam2long",
]
