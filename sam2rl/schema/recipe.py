"""YAML recipes: typed sections (dataclasses), interpolation, `key=value` overrides, strict keys and
values. A recipe that cannot be used fails here, before anything runs or is written, with one
`RecipeError` naming the file and the key: unknown keys (with the closest valid one), values of the
wrong type, and values outside the range each field declares (`sam2rl.schema.fields`)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from sam2rl.atomic import write_text
from sam2rl.errors import InputError
from sam2rl.lookup import did_you_mean
from sam2rl.schema.fields import RULE

__all__ = ["RecipeError", "check_recipe", "load_recipe", "read_recipe_file", "recipe_problems", "save_recipe"]

T = TypeVar("T")


class RecipeError(InputError, ValueError):
    """A recipe that cannot be used; the message names the file and the key at fault."""


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every key path of a schema; the fields of list items (e.g. curriculum stages) as `list[i].field`."""
    if isinstance(node, ListConfig):
        return _keys(node._get_node(0), f"{prefix[:-1]}[i].") if len(node) else []
    if not isinstance(node, DictConfig):
        return []
    out = []
    for key in node.keys():
        path = f"{prefix}{key}"
        out.append(path)
        out += _keys(node._get_node(key), f"{path}.")
    return out


def _closest(key: str, valid: list[str]) -> str:
    """`; did you mean ...?` for an unknown key. OmegaConf names a key inside a list item without
    its path, so such a key is matched against the last part of every valid one."""
    if "." in key:
        return did_you_mean(key, valid)
    leaves = {path.rsplit(".", 1)[-1]: path for path in valid}
    hint = did_you_mean(key, leaves)
    for leaf, path in leaves.items():  # the hint names the leaf it matched; name its whole path
        if hint and hint == did_you_mean(leaf, [leaf]):
            return did_you_mean(path, [path])
    return ""


def recipe_problems(section: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(key, what is wrong) for every value of a typed recipe outside its field's rule, sections and
    list items included (`data.curriculum[1].clip_frames`). Inner values come first: the rule of a
    section or list (across its entries, e.g. heads must divide the width) is asked only when all
    inside it are in range, and so are the recipe's own rules across sections (its `problems()`,
    yielding (key, message))."""
    found: list[tuple[str, str]] = []
    for spec in fields(section):
        key, value = f"{prefix}{spec.name}", getattr(section, spec.name)
        inner: list[tuple[str, str]] = []
        if is_dataclass(value):
            inner = recipe_problems(value, f"{key}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if is_dataclass(item):
                    inner += recipe_problems(item, f"{key}[{i}].")
        rule = spec.metadata.get(RULE)
        if rule is not None and not inner:
            inner = [(f"{key}{below}", message) for below, message in rule.problems(value)]
        found += inner
    if not found and callable(getattr(section, "problems", None)):
        found += [(f"{prefix}{name}", message) for name, message in section.problems()]
    return found


def check_recipe(recipe: Any, where: str = "recipe") -> None:
    """Raise a `RecipeError` for the first value outside its range: `<where>: <key>: <what is wrong>`."""
    for key, message in recipe_problems(recipe)[:1]:
        raise RecipeError(f"{where}: {key}: {message}")


def read_recipe_file(path: str | Path) -> DictConfig:
    """The YAML mapping at `path`, untyped (`load_recipe` types it); a `RecipeError` names the file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path}: file not found")
    try:
        layer = OmegaConf.load(path)
    except Exception as error:  # YAML syntax errors come in several types
        raise RecipeError(f"recipe {path}: not valid YAML ({error})") from None
    if not isinstance(layer, DictConfig):
        raise RecipeError(f"recipe {path}: expected a mapping of sections (model:, data:, ...), got a list")
    return layer


def load_recipe(path: str | Path, schema: type[T], overrides: list[str] | None = None) -> T:
    """Merge the YAML at `path` and `key=value` overrides onto `schema` and return the typed object.

    Unknown keys are rejected with the closest valid key; type errors and values outside a field's
    range name the key.
    """
    path = Path(path)
    layer = read_recipe_file(path)
    base = OmegaConf.structured(schema)
    valid = _keys(base)
    lists = [key for key in valid if "[" not in key and isinstance(OmegaConf.select(base, key), ListConfig)]

    def merge(config: DictConfig, layer: DictConfig, source: str) -> DictConfig:
        try:
            return OmegaConf.merge(config, layer)
        except (ConfigKeyError, ValidationError, OmegaConfBaseException) as error:
            key = getattr(error, "full_key", None) or ""
            if key and "." not in key:  # inside a list item OmegaConf drops the path: find the field
                key = next((path for path in valid if "[i]" in path and path.endswith(f".{key}")), key)
            if key and key not in valid:
                raise RecipeError(f"{source}: unknown key {key!r}{_closest(key, valid)}") from None
            raise RecipeError(f"{source}: bad value for {key or 'a key'}: {str(error).splitlines()[0]}") from None

    if "task" not in valid:
        layer.pop("task", None)
    config = merge(base, layer, f"recipe {path}")
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"override {item!r}: expected key=value")
        inside = [key for key in lists if item.startswith(f"{key}.")]
        if inside:  # OmegaConf would try to merge a mapping into the list
            raise RecipeError(f"override {item!r}: {inside[0]} is a list; override it whole, e.g. "
                              f"'{inside[0]}=[...]'")
        key, _, value = item.partition("=")
        if f"{key}.name" in valid and "." not in key and not value.startswith("{"):
            # `model=sam2.1_hiera_l`: the whole section by its name, every other field at its default
            # (input size, checkpoint looked up by name, bf16 on CUDA)
            config[key] = OmegaConf.structured(type(OmegaConf.to_object(base[key])))
            item = f"{key}.name={value}"
        config = merge(config, OmegaConf.from_dotlist([item]), f"override {item!r}")
    try:
        OmegaConf.resolve(config)
    except OmegaConfBaseException as error:
        raise RecipeError(f"recipe {path}: {error}") from None
    recipe = OmegaConf.to_object(config)
    check_recipe(recipe, f"recipe {path}")
    return recipe


def save_recipe(recipe: Any, path: str | Path) -> None:
    """Write the resolved recipe next to a run's outputs (atomically)."""
    yaml = OmegaConf.to_yaml(OmegaConf.structured(recipe))
    write_text(path, yaml)
