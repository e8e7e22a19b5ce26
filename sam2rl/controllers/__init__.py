"""Memory controllers: SAM 2's FIFO rule and everything that replaces it."""

from sam2rl.controllers.base import CONTROLLERS, Controller, make_controller, register_controller
from sam2rl.controllers.fifo import FifoController

__all__ = ["CONTROLLERS", "Controller", "FifoController", "make_controller", "register_controller"]
