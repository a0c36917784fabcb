"""YAML config files: ``cnnlab train --config run.yaml`` and each run's ``config.yaml``.

A config file is a YAML mapping of :class:`TrainConfig` field names to values
(like timm's ``args.yaml`` and LightningCLI's ``--config``); flags given on the
command line win over the file. Every run directory gets a ``config.yaml`` with
the run's full resolved config, so ``cnnlab train --config runs/x/config.yaml``
trains the same run again (into a new directory: ``out_dir`` is left out).
Unknown keys and values of the wrong type are one :class:`ConfigError` naming
the key.

Example:
    >>> from cnnlab.train.config import TrainConfig
    >>> cfg = TrainConfig(model="lenet", epochs=2, lr=0.05)
    >>> TrainConfig(**parse_config(config_yaml(cfg), "run.yaml")) == cfg
    True
    >>> parse_config("btach_size: 64", "run.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    cnnlab.errors.ConfigError: run.yaml: unknown key 'btach_size' (did you mean batch_size?)...
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig

HEADER = ("# cnnlab train --config THIS_FILE trains this run again (into a new run directory;\n"
          "# --out DIR names it). Flags given after --config override these values.\n")


def _fields() -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def config_yaml(config: TrainConfig) -> str:
    """The YAML text of ``config`` (without ``out_dir``), with a header comment."""
    data = _plain(config.to_dict())
    data.pop("out_dir", None)
    lines = [(key, _scalar(value)) for key, value in data.items()]
    if all(text is not None for _, text in lines):
        return HEADER + "".join(f"{key}: {text}\n" for key, text in lines)
    import yaml  # a value _scalar leaves to PyYAML

    return HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


# YAML 1.1 words that a plain scalar would turn into a bool or null
_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(value: Any) -> str | None:
    """``value`` as yaml.safe_dump writes it in a block mapping, for the values a run's
    config mostly holds; None when PyYAML should write it. Why not PyYAML always: its
    import is ~35 ms of every ``cnnlab train`` start-up (a test checks this against
    ``yaml.safe_dump`` on generated configs)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # PyYAML writes 1e-05 as 1.0e-05, inf as .inf: left to it
        return text if text.replace(".", "", 1).lstrip("-").isdigit() else None
    if isinstance(value, str):
        plain = value[:1].isalpha() and value.lower() not in _WORDS and all(
            c.isascii() and (c.isalnum() or c in "_-./") for c in value)
        return value if plain else None
    if value == {} or value == []:
        return repr(value)
    return None


def _check(name: str, value: Any, kind: str, source: str) -> Any:
    """``value`` if it fits the field's annotation ``kind`` (e.g. ``"float | None"``)."""
    allowed = {k.strip() for k in kind.split("|")}
    if value is None:
        if "None" in allowed:
            return None
    elif isinstance(value, bool):
        if "bool" in allowed:
            return value
    elif isinstance(value, int) and ("int" in allowed or "float" in allowed):
        return value
    elif isinstance(value, float) and "float" in allowed:
        return value
    elif isinstance(value, str) and "str" in allowed:
        return value
    elif isinstance(value, str) and "float" in allowed:
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string; the user meant the number
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, dict) and any(a.startswith("dict") for a in allowed):
        return value
    words = {"int": "an integer", "float": "a number", "str": "a string",
             "bool": "true or false", "dict": "a mapping", "None": "null"}
    order = sorted(allowed, key=lambda a: (a == "None", a))  # "null" last
    want = " or ".join(words.get(a.split("[")[0], a) for a in order)
    raise ConfigError(f"{source}: {name} must be {want}, got {value!r}")


def parse_config(text: str, source: str = "config") -> dict[str, Any]:
    """The field values a YAML text sets, type-checked (``source`` names it in errors)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source} is not valid YAML{where} "
                          f"({getattr(e, 'problem', None) or type(e).__name__}); "
                          "write one 'key: value' per line") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of 'key: value' lines, "
                          f"not a {type(data).__name__}")
    fields = _fields()
    out = {}
    for key, value in data.items():
        name = str(key)
        if name not in fields:
            close = difflib.get_close_matches(name.replace("-", "_"), list(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{source}: unknown key {name!r}{hint}; the keys are "
                              f"TrainConfig's fields: {', '.join(fields)}")
        out[name] = _check(name, value, fields[name], source)
    return out


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a YAML config file; see :func:`parse_config`."""
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ConfigError(f"config file {path} {what}; pass a YAML file such as "
                          "runs/x/config.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 20)  # a config is a few hundred bytes; do not read a disk image
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; pass a YAML file") from None
    return parse_config(text, str(path))


def merge_config_file(path: str | os.PathLike, config: TrainConfig,
                      explicit: Iterable[str]) -> tuple[TrainConfig, set[str]]:
    """The file's values under the explicitly set fields of ``config``; the new explicit set."""
    explicit = set(explicit)
    merged = load_config_file(path)
    user = config.to_dict()
    merged.update({k: user[k] for k in explicit})
    return TrainConfig.from_dict(merged), explicit | set(merged)
