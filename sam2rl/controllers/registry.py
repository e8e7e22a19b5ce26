"""The one way a controller is built from its name: registered rules, prefixes, dotted paths.

`make_controller("samurai")` builds a registered rule, `make_controller("mypkg.rules.MyRule")` a
user's class, and a name with a registered prefix goes to the package that owns the prefix:
`sam2long:P` to SAM2Long's pathway search (`sam2rl.controllers.pathways`), `agent:PATH` to a
trained agent (`sam2rl.agents`, which registers it when imported). Lower layers never import the
owners of prefixes; the owners register themselves here.
"""

from __future__ import annotations

from collections.abc import Callable

from sam2rl.controllers.base import Controller, ControllerError
from sam2rl.lookup import check_options, did_you_mean, import_dotted

__all__ = ["CONTROLLERS", "PREFIXES", "make_controller", "register_controller", "register_prefix"]

Factory = Callable[..., Controller]

CONTROLLERS: dict[str, Factory] = {}
"""Registered rules by name (the built-ins, plus any registered by imported user code)."""

PREFIXES: dict[str, Callable[[str], Factory]] = {}
"""`prefix -> resolve(rest)`: for a name `prefix + rest`, the factory that builds it from options."""


def register_controller(name: str) -> Callable[[type[Controller]], type[Controller]]:
    """Class decorator: make a `Controller` available by `name` (`sam2rl eval --controllers`, recipes)."""
    def register(cls: type[Controller]) -> type[Controller]:
        CONTROLLERS[name] = cls
        cls.name = name
        return cls

    return register


def register_prefix(prefix: str, resolve: Callable[[str], Factory]) -> None:
    """Names starting with `prefix` (e.g. `agent:`) are built by `resolve(rest)(**options)`;
    `resolve` raises `ControllerError` for a `rest` it cannot use."""
    PREFIXES[prefix] = resolve


def make_controller(name: str, **options: object) -> Controller:
    """The controller `name` names, built with `options` (checked against its constructor first):
    a registered rule, a registered prefix (`sam2long:3`, `agent:runs/x/agent.pt`), or a user's
    class by dotted path (`mypkg.mod.MyRule`). Bad names and options raise `ControllerError`."""
    def error(message: str) -> ControllerError:
        return ControllerError(f"controller {name!r}: {message}")

    prefix = next((p for p in PREFIXES if name.startswith(p)), None)
    if prefix is not None:
        factory = PREFIXES[prefix](name.removeprefix(prefix))
    elif name in CONTROLLERS:
        factory = CONTROLLERS[name]
    elif "." in name:
        factory = import_dotted(name, lambda message: error(f"cannot import it: {message}"))
    else:
        prefixes = ", ".join(f"{prefix}..." for prefix in sorted(PREFIXES))
        raise ControllerError(f"unknown controller {name!r}; available: {', '.join(sorted(CONTROLLERS))} (or "
                              f"{prefixes}, or a dotted path to your own Controller class)"
                              f"{did_you_mean(name, CONTROLLERS)}")
    check_options(factory, options, error)
    return factory(**options)
