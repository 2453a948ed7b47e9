"""YAML configuration files: safe loading and key checks, with one-line errors naming the file.

Feature configs, training configs (``model:`` and ``training:`` sections) and the ``feats.yaml``
that ``asr features`` leaves in a data directory are all read through here. ``yaml.safe_load``
only: a config file can hold data, never objects to construct. ``apply_overrides`` sets any key
of a loaded config from ``dotted.key=value`` strings (the command line's extra arguments).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import yaml

from asr.errors import ConfigError, DataDirError
from asr.fileio import read_bytes


def load_yaml_mapping(path: str | os.PathLike, what: str = "config") -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(read_bytes(path).decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: {what} is not valid UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except DataDirError as exc:  # missing or unreadable: a config problem here
        raise ConfigError(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what} must be a mapping, got {type(data).__name__}")
    return data


def check_known_keys(
    values: Mapping[str, Any], known: Iterable[str], source: str, what: str = "option"
) -> None:
    """ConfigError listing the keys of ``values`` not in ``known`` (a typo, usually)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: expected a mapping, got {type(values).__name__}")
    known = set(known)
    unknown = sorted(map(str, set(values) - known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown {what}(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def validated_dataclass(cls: type, values: Mapping[str, Any], source: str) -> Any:
    """An instance of dataclass ``cls`` from ``values`` (defaults for the rest), checked by its
    ``validate(source)`` so that an error names the file, not the class.

    ``__init__`` is bypassed on purpose: its own validation would report without the source.
    """
    instance = cls.__new__(cls)
    for f in fields(cls):
        setattr(instance, f.name, values.get(f.name, f.default))
    instance.validate(source)
    return instance


def apply_overrides(
    document: Mapping[str, Any], overrides: Sequence[str], source: str
) -> dict[str, Any]:
    """A copy of ``document`` with each ``dotted.key=value`` of ``overrides`` set, in order.

    The value is read as YAML (``yaml.safe_load``), so ``true``, ``0.5``, ``[1, 2]`` and
    ``null`` mean what they mean in the file; only the first ``=`` splits, so a string value may
    hold more. Sections on the way that are missing or null become mappings. Whether a key is
    known and its value of the right type is left to the config's own validation (which lists
    the valid keys); ``source`` names the file in the errors raised here.
    """
    result = copy.deepcopy(dict(document))
    for text in overrides:
        key, equals, raw = text.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise ConfigError(
                f"{source}: {text!r} is not KEY=VALUE (a dotted key, e.g. training.lr=0.001)"
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{source}: {key}={raw}: not a YAML value ({' '.join(str(exc).split())})"
            ) from None
        node = result
        for depth, part in enumerate(parts[:-1], start=1):
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, Mapping):
                section = ".".join(parts[:depth])
                raise ConfigError(f"{source}: {key}: {section} is {child!r}, not a section")
            node[part] = dict(child)
            node = node[part]
        node[parts[-1]] = value
    return result
