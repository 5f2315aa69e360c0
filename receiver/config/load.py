"""receiver.yml → Config: read YAML, replace ${VAR}, apply RECEIVER_* overrides, validate, report every problem.

Also dump_redacted(), the effective config with secrets masked, for check-config and /api.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from pathlib import Path
from typing import Annotated, Any, Mapping, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from receiver.channels.registry import SETTINGS_BY_TYPE
from receiver.config.errors import ConfigError, ConfigProblem, key_path
from receiver.config.model import Config
from receiver.config.routes import ENTRY_TAGS, PersonTarget
from receiver.fields import InterpolationError, Secret, interpolate

# 12-factor overrides, applied after the file: environment variable → key path.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "RECEIVER_DATABASE_URL": ("database", "url"),
    "RECEIVER_HOST": ("server", "host"),
    "RECEIVER_PORT": ("server", "port"),
}


def default_config() -> Config:
    """The configuration of a receiver without a file: SQLite, every level to the log channel, no auth."""
    return Config()


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load `path` (default: $RECEIVER_CONFIG; neither → defaults, and `config.source is None`).

    Raises ConfigError listing every problem found, each with file, key path and fix.
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get("RECEIVER_CONFIG") or None
    file = None if path is None else os.fspath(path)
    raw = {} if file is None else _read_yaml(file)

    problems: list[ConfigProblem] = []
    raw = _interpolate_tree(raw, env, (), problems)
    overridden = _apply_env_overrides(raw, env)
    failed = {p.key for p in problems}
    context = {"base_dir": Path(file).resolve().parent if file else None}
    config = None
    try:
        config = Config.model_validate(raw, context=context)
    except ValidationError as exc:
        # A value whose ${VAR} failed is still the raw text: do not report it a second time.
        problems += [p for p in map(lambda e: _problem(e, overridden), exc.errors()) if p.key not in failed]
    except ConfigError as exc:
        problems += exc.errors
    if problems or config is None:
        raise ConfigError(problems, file=file)
    config._source = file
    return config


# --- YAML -------------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys from `<<: *anchor` may be overridden; that is what merge keys are for
        key = loader.construct_object(key_node)
        if not isinstance(key, (str, int, float, bool)):
            continue  # unhashable or odd keys are left to validation
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f'duplicate key "{key}"', key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(file: str) -> dict:
    try:
        with open(file, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError("file not found", file=file,
                          fix="check the path (or RECEIVER_CONFIG); without a file the receiver runs on defaults")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {getattr(exc, 'strerror', None) or exc}", file=file,
                          fix="check the path and its permissions")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"YAML syntax error{where}: {problem}", file=file,
                          fix="check indentation, colons and quoting on that line and the one before")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the file must be a mapping of sections, got a {type(data).__name__}", file=file,
                          fix="start with section keys such as channels: and routes:")
    return data


# --- ${VAR} and RECEIVER_* --------------------------------------------------------------------------------


def _interpolate_tree(node: Any, env: Mapping[str, str], loc: tuple, problems: list[ConfigProblem]) -> Any:
    # After YAML parsing, so a value from the environment can never change the document's structure.
    if isinstance(node, str):
        try:
            return interpolate(node, env)
        except InterpolationError as exc:
            problems.append(ConfigProblem(key_path(loc), str(exc), exc.fix))
            return node
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, (*loc, k if isinstance(k, (str, int)) else str(k)), problems)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, env, (*loc, i), problems) for i, v in enumerate(node)]
    return node


def _apply_env_overrides(raw: dict, env: Mapping[str, str]) -> dict[tuple, str]:
    applied = {}
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            block = raw.get(section)
            if block is None:
                block = raw[section] = {}
            if isinstance(block, dict):
                block[key] = env[var]
                applied[(section, key)] = var
    return applied


# --- pydantic errors → problems ---------------------------------------------------------------------------

_SAFE_TO_SHOW = (str, int, float, bool)
_MAPPING = ("a mapping (key: value)", "write key: value pairs, indented below the key or as {key: value}")
_LIST = ("a list", "write [a, b], or one '- item' per line below the key")
_SHAPES = {"model_type": _MAPPING, "model_attributes_type": _MAPPING, "dict_type": _MAPPING,
           "list_type": _LIST, "tuple_type": _LIST}


def _problem(err: Mapping[str, Any], overridden: Mapping[tuple, str]) -> ConfigProblem:
    raw_loc = tuple(err["loc"])
    loc = list(raw_loc)
    if len(loc) >= 3 and loc[0] == "channels" and loc[2] in SETTINGS_BY_TYPE:
        del loc[2]  # the discriminated union puts the channel type into the path; the YAML has no such key
    if len(loc) >= 6 and loc[0] == "routes" and loc[2] == "levels" and loc[5] in ENTRY_TAGS:
        del loc[5]  # so does a level entry's (a channel name or a schedule/person target)
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    fix = None
    if loc and loc[-1] == "[key]":
        loc.pop()
        message = f'invalid key "{loc.pop()}": ' + _sentence(err["msg"])
    elif kind == "missing":
        message, fix = f'missing required key "{loc[-1]}"', f"add {loc[-1]}:"
    elif kind == "extra_forbidden":
        message, fix = f'unknown key "{loc[-1]}"', _unknown_key_fix(raw_loc)
    elif kind in ("value_error", "assertion_error") and "error" in ctx:
        message, fix = str(ctx["error"]), getattr(ctx["error"], "fix", None)
    elif kind == "too_short":
        count = ctx.get("min_length", 1)
        message = "must not be empty" if count == 1 else f"must have at least {count} items"
    elif kind in _SHAPES:
        message, fix = f"must be {_SHAPES[kind][0]}, got {_type_name(value)}", _SHAPES[kind][1]
    else:
        message = _sentence(err["msg"])
        # Values reaching pydantic's own validators are never secrets (Secret validates itself), so the
        # offending value may be shown.
        if isinstance(value, _SAFE_TO_SHOW):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            message += f" (got {shown})"
    var = overridden.get(tuple(loc))
    if var:
        message += f" (set by {var})"
    return ConfigProblem(key_path(loc), message, fix)


def _sentence(msg: str) -> str:
    return msg.replace("Input should be", "must be").replace("Value error, ", "")


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType) and len([a for a in get_args(tp) if a is not type(None)]) == 1:
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def _step(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return next((f.annotation for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
    origin = get_origin(tp)
    if origin in (list, tuple) and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[1]
    if origin in (Union, types.UnionType):
        # the channel union's tag, or a level entry's
        return SETTINGS_BY_TYPE.get(part) or (PersonTarget if part == "target" else None)  # type: ignore[arg-type]
    return None


def _unknown_key_fix(raw_loc: tuple) -> str:
    """"did you mean ...?" from the keys the model at that place allows."""
    tp: Any = Config
    for part in raw_loc[:-1]:
        tp = _step(tp, part)
    tp = _unwrap(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return "remove it"
    allowed = [f.alias or n for n, f in tp.model_fields.items()]
    close = difflib.get_close_matches(str(raw_loc[-1]), allowed, n=1)
    if close:
        return f'did you mean "{close[0]}"?'
    return "remove it; the keys allowed here are " + ", ".join(allowed)


# --- showing the effective config -------------------------------------------------------------------------

_USERINFO_RE = re.compile(r"(?<=://)([^/@:\s]*):([^/@\s]+)@")
_SENSITIVE_HEADER_RE = re.compile(r"auth|token|secret|key|cookie|signature|password", re.IGNORECASE)


def dump_redacted(config: Config) -> dict:
    """The effective config as plain data: durations as "5m", secrets and URL passwords as ********."""
    return _redact(config.model_dump(mode="json", by_alias=True))


def _redact(node: Any, parent_key: str | None = None) -> Any:
    if isinstance(node, dict):
        if parent_key == "headers":
            return {k: Secret.MASK if _SENSITIVE_HEADER_RE.search(k) else v for k, v in node.items()}
        return {k: _redact(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact(v) for v in node]
    if isinstance(node, str):
        return _USERINFO_RE.sub(lambda m: f"{m.group(1)}:{Secret.MASK}@", node)
    return node
