"""Dataclass configs to and from YAML: presets (``--config NAME``) and the resolved config that
every run writes next to its outputs."""

from __future__ import annotations

import dataclasses
import enum
import importlib.resources
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from .errors import UserError
from .io import write_text_atomic

C = TypeVar("C")


def presets_dir() -> Path:
    """The presets shipped inside the package (``dreamfusion3d/presets``); a checkout's top-level
    ``configs/`` is a link to the same folder, so a checkout and an installed wheel read the same files."""
    return Path(str(importlib.resources.files("dreamfusion3d") / "presets"))


def to_dict(config: Any) -> Any:
    """A plain-YAML view of a (nested) dataclass config."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {str(k): to_dict(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    if isinstance(config, enum.Enum):
        return config.value
    return config


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{where}: cannot be {value!r}")
    if origin is Literal:
        if value not in get_args(annotation):
            raise UserError(f"{where}: {value!r} is not one of {list(get_args(annotation))}")
        return value
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        args = get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise UserError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [_convert(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        return dict(value)
    if annotation is Path:
        return Path(value)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is str and isinstance(value, str):
        return value
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if annotation in (float, int, bool, str):
        raise UserError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Build dataclass ``cls`` from a mapping; unknown keys are an error, missing keys keep
    their defaults."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{where}: unknown option(s) {unknown} (known: {sorted(names)})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def resolve_preset(name_or_path: str) -> Path:
    """A preset is a YAML path, or a name looked up in ``./configs`` (the folder users edit; in a
    checkout it is the package's presets) and then in the presets shipped with the package."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    for folder in (Path.cwd() / "configs", presets_dir()):
        for name in (name_or_path, f"{name_or_path}.yaml", f"{name_or_path}.yml"):
            if (folder / name).is_file():
                return folder / name
    names = sorted(p.stem for p in presets_dir().glob("*.yaml"))
    raise UserError(f"preset {name_or_path!r} not found (give a YAML path or one of {', '.join(names)})")


def load_preset(cls: type[C], name_or_path: str, command: str | None = None) -> C:
    path = resolve_preset(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"preset {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"preset {path} must be a mapping of option names to values")
    preset_command = data.pop("command", None)
    if command is not None and preset_command is not None and preset_command != command:
        raise UserError(f"preset {path} is for `{preset_command}`, not `{command}`")
    return from_dict(cls, data, where=str(path))


def resumed_config(cls: type[C], resume: Path, command: str, what: str) -> C:
    """The configuration a run folder was started with (``--resume`` continues with it, writing
    into the same folder). ``what``: "a generate run", say."""
    if not (resume / "config.yaml").is_file():
        raise UserError(f"--resume {resume}: no config.yaml there, so it is not {what}")
    cfg = load_preset(cls, str(resume / "config.yaml"), command=command)
    cfg.resume, cfg.out = resume, resume
    return cfg


def save_config(config: Any, path: str | Path, command: str | None = None) -> None:
    """Write the fully resolved config as YAML (atomically); it can be passed back as ``--config``."""
    data = to_dict(config)
    if command is not None:
        data = {"command": command, **data}
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
