"""Value types every config section shares: Duration, Secret, ByteSize, ${VAR} interpolation.

Each type has a plain function (parse_duration, interpolate, ...) usable anywhere, and an annotated form that
pydantic models use. Errors are FieldError: a ValueError that also carries a `fix` hint for the config loader.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from typing import Annotated, Any, Mapping
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import core_schema

__all__ = [
    "ByteSize",
    "Duration",
    "FieldError",
    "FrozenModel",
    "Integer",
    "InterpolationError",
    "Name",
    "Number",
    "Secret",
    "HttpsSecretUrl",
    "PositiveDuration",
    "at_least",
    "check_url",
    "format_duration",
    "interpolate",
    "parse_byte_size",
    "parse_duration",
]


class FieldError(ValueError):
    """A bad value; `fix` says what to write instead. The message never contains a secret."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = fix


class FrozenModel(BaseModel):
    """Base of every settings model: immutable, and an unknown key is an error rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _not_bool(value: Any) -> Any:
    # pydantic's lax int/float accept True/False; in a config file that is always a mistake.
    if isinstance(value, bool):
        raise FieldError(f"expected a number, got {str(value).lower()}", fix="write a number")
    return value


# Lax (so "${PORT}" interpolated to "9095" still validates) but never a boolean.
Integer = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise FieldError(f'"{value}" is not a valid name',
                         fix="use letters, digits, -, _ and ., starting with a letter or digit")
    return value


# Names of channels, routes and tokens: they end up in metrics labels, logs and URLs.
Name = Annotated[str, AfterValidator(_name)]


# --- Duration ---------------------------------------------------------------------------------------------

# Prometheus model.ParseDuration: units in descending order, each at most once, integers only.
_UNITS_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000,
             "m": 60_000, "s": 1000, "ms": 1}
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_MAX_DAYS = 999_999_999  # timedelta's limit


def parse_duration(text: str) -> dt.timedelta:
    """`1h30m` → timedelta(hours=1, minutes=30). Bare numbers are rejected: a unit is required."""
    if not isinstance(text, str):
        raise FieldError(f"expected a duration string, got {type(text).__name__}", fix='write e.g. "30s"')
    stripped = text.strip()
    if re.fullmatch(r"\d+", stripped):
        # A bare number is ambiguous (seconds? milliseconds?), so say what to write rather than guess.
        raise FieldError(f"duration {stripped} has no unit", fix=f'write "{stripped}s" if seconds are meant')
    match = _DURATION_RE.match(stripped)
    if not stripped or not match:
        raise FieldError(
            f'"{text}" is not a duration',
            fix='use Prometheus notation: a number and a unit (ms, s, m, h, d, w, y) in that order, '
                'largest first, e.g. "500ms", "30s", "5m", "1h30m"',
        )
    ms = sum(int(g) * mult for g, mult in zip(match.groups(), _UNITS_MS.values()) if g)
    if ms // 86_400_000 > _MAX_DAYS:
        raise FieldError(f'duration "{text}" is too large', fix="use a shorter duration")
    return dt.timedelta(milliseconds=ms)


def format_duration(value: dt.timedelta) -> str:
    """The shortest Prometheus form, as Prometheus prints it: 90m → "1h30m", 0 → "0s", 14d → "2w"."""
    ms = (value.days * 86_400 + value.seconds) * 1000 + value.microseconds // 1000
    if ms < 0:
        return "-" + format_duration(-value)
    if ms == 0:
        return "0s"
    out = []
    for unit, mult in _UNITS_MS.items():
        # Like Prometheus, years and weeks only when they divide exactly: "90d" reads better than "12w6d".
        if unit in ("y", "w") and ms % mult:
            continue
        count, ms = divmod(ms, mult)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _validate_duration(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        if value < dt.timedelta(0):
            raise FieldError("duration must not be negative")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FieldError(f"expected a duration like \"30s\", got {type(value).__name__}",
                         fix='write e.g. "30s" or "5m"')
    if isinstance(value, (int, float)):
        # Prometheus durations are whole numbers: 1.5 seconds is written 1500ms.
        wanted = f"{int(value)}s" if value == int(value) else f"{round(value * 1000)}ms"
        raise FieldError(f"duration {value:g} has no unit", fix=f'write "{wanted}" if seconds are meant')
    return parse_duration(value)


Duration = Annotated[
    dt.timedelta,
    PlainValidator(_validate_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": _DURATION_RE.pattern, "examples": ["30s", "5m", "1h30m"]}),
]


def at_least(minimum: dt.timedelta) -> AfterValidator:
    """A constraint for Duration fields: `Annotated[Duration, at_least(timedelta(seconds=1))]`."""

    def check(value: dt.timedelta) -> dt.timedelta:
        if value < minimum:
            raise FieldError(f"{format_duration(value)} is too short: the minimum is {format_duration(minimum)}",
                             fix=f'write "{format_duration(minimum)}" or more')
        return value

    return AfterValidator(check)


# Timeouts and intervals that must be more than zero.
PositiveDuration = Annotated[Duration, at_least(dt.timedelta(milliseconds=1))]


def check_url(value: str, *, schemes: tuple[str, ...] = ("https", "http")) -> str:
    """Raise FieldError unless `value` is an absolute URL with one of `schemes`. The message never shows the
    value, because webhook URLs are credentials."""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = " or ".join(f"{s}://" for s in schemes)
        got = f"a {parts.scheme}:// URL" if parts.scheme and parts.hostname else "a value without scheme or host"
        raise FieldError(f"must be an {wanted} URL; got {got}", fix=f"write the full {wanted}host/... URL")
    return value


# --- Secret -----------------------------------------------------------------------------------------------


class Secret:
    """A string that does not show itself: str() and repr() print ********; `.reveal()` gives the value."""

    __slots__ = ("_value",)
    MASK = "********"

    def __init__(self, value: str):
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return self.MASK

    def __repr__(self) -> str:
        return f"Secret('{self.MASK}')"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def _validate(cls, value: Any) -> "Secret":
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            # Never echo the value: it may be a real credential that YAML read as a number.
            raise FieldError(f"a secret must be a string, got {type(value).__name__}",
                             fix="put the value in quotes, or better use \"${ENV_VAR}\"")
        if not value:
            raise FieldError("a secret must not be empty",
                             fix="set the value (if it comes from ${VAR}, check that the variable is not empty)")
        return cls(value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _: cls.MASK),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        return {"type": "string", "writeOnly": True, "format": "password"}


def _https_secret(value: Secret) -> Secret:
    check_url(value.reveal(), schemes=("https",))
    return value


# A webhook URL that is itself the credential (Slack, Teams, Mattermost incoming webhooks): https only, never shown.
HttpsSecretUrl = Annotated[Secret, AfterValidator(_https_secret)]


# --- ${VAR} -----------------------------------------------------------------------------------------------


class InterpolationError(FieldError):
    """A `${VAR}` that cannot be replaced; `missing` lists unset variable names."""

    def __init__(self, message: str, fix: str | None = None, missing: tuple[str, ...] = ()):
        super().__init__(message, fix)
        self.missing = missing


_REF_RE = re.compile(r"\$\$\{|\$\{([^}]*)(\}?)")
_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace `${VAR}` with env["VAR"]; `$${` is a literal `${`. Reports every unset variable at once."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, closed = match.group(1), match.group(2)
        if not closed:
            raise InterpolationError(f'unterminated "${{" in "{text}"',
                                     fix='close it with "}", or write "$${" for a literal "${"')
        if not _VAR_NAME_RE.fullmatch(name):
            raise InterpolationError(f'"${{{name}}}" is not a valid variable reference',
                                     fix='names are letters, digits and _; write "$${" for a literal "${"')
        if name not in env:
            missing.append(name)
            return ""
        return env[name]

    result = _REF_RE.sub(replace, text)
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        plural = "s" if len(set(missing)) > 1 else ""
        raise InterpolationError(f"environment variable{plural} {names} not set",
                                 fix=f"set {names} in the receiver's environment, or write the value in the file",
                                 missing=tuple(dict.fromkeys(missing)))
    return result


# --- ByteSize ---------------------------------------------------------------------------------------------

_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_BYTES_RE = re.compile(r"^(\d+)\s*([A-Za-z]*)$")


def parse_byte_size(value: int | str) -> int:
    """`64MiB` → 67108864; `1MB` → 1000000; a plain integer is bytes."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FieldError(f"expected a size like \"64MiB\", got {type(value).__name__}", fix='write e.g. "64MiB"')
    if isinstance(value, int):
        if value < 0:
            raise FieldError("a size must not be negative")
        return value
    match = _BYTES_RE.match(value.strip())
    unit = match.group(2) if match else ""
    if not match or (unit and unit not in _BYTE_UNITS):
        raise FieldError(f'"{value}" is not a size',
                         fix="write a whole number and one of the units " + ", ".join(_BYTE_UNITS) + ', e.g. "64MiB"')
    return int(match.group(1)) * _BYTE_UNITS.get(unit, 1)


ByteSize = Annotated[
    int,
    PlainValidator(parse_byte_size),
    WithJsonSchema({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "examples": ["64MiB"]}]}),
]
