"""The typed receiver.yml: every section with its defaults from docs/design.md, validated strictly and cross-checked.

`Config()` is the configuration of a receiver started without a file. Field validation errors surface as pydantic
ValidationErrors; cross-section checks (undefined channels, misplaced default route) raise ConfigError with
every problem found. `receiver.config.load` turns both into one ConfigError naming file, key path and fix.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from receiver.channels.registry import SETTINGS_BY_TYPE
from receiver.config.errors import ConfigError, ConfigProblem, key_path
from receiver.config.hosts import AllowedHosts
from receiver.config.schedules import Person, Schedule
from receiver.config.people_routing import check_people_routing
from receiver.config.pipeline import DeadmanSettings, ReconcileSettings
from receiver.config.sla_targets import SlaSettings, check_sla
from receiver.config.time_intervals import TimeIntervals, check_route_intervals
from receiver.config.routes import (  # EscalationSettings lives beside the level policies it is made of
    IMPLICIT_DEFAULT_ROUTE,
    EscalationSettings,
    ResolvedRoute,
    RouteSettings,
    resolve_routes,
)
from receiver.domain import Level, Role
from receiver.fields import (
    at_least,
    ByteSize,
    Duration,
    FieldError,
    FrozenModel,
    Integer,
    Name,
    Number,
    PositiveDuration,
    Secret,
    check_url,
)

NonEmpty = Annotated[str, Field(min_length=1)]


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    # Relative paths are relative to the config file, as in Prometheus and Alertmanager.
    base = (info.context or {}).get("base_dir")
    if value is not None and not value.is_absolute() and base is not None:
        return Path(base) / value
    return value


# --- database, auth, levels -------------------------------------------------------------------------------


class DatabaseSettings(FrozenModel):
    url: str = "sqlite:///alert-receiver.db"
    # How long a writer waits for a lock before the webhook answers 503 (Alertmanager then retries).
    lock_timeout: PositiveDuration = dt.timedelta(seconds=5)
    pool_size: Annotated[Integer, Field(ge=1)] = 5
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # PostgreSQL: the bulk INSERTs are prepared once per connection (store/sql.py). Off behind a PgBouncer in
    # transaction mode that does not keep prepared statements (before 1.21, or max_prepared_statements = 0).
    prepared_statements: bool = True
    # A read of the API or dashboard past this is stopped by the database (503): it never holds a webhook's worker.
    query_timeout: PositiveDuration = dt.timedelta(seconds=5)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
            raise FieldError("not a SQLAlchemy URL",
                             fix="write e.g. sqlite:///alert-receiver.db or postgresql+psycopg://user:pass@host/db")
        return value


class TokenSettings(FrozenModel):
    name: Name
    token: Secret | None = None  # always set after validation: token_file is read into it
    token_file: Path | None = None
    role: Role

    @model_validator(mode="before")
    @classmethod
    def _read_token_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        has_token, has_file = data.get("token") is not None, data.get("token_file") is not None
        if has_token == has_file:
            raise FieldError("give either token or token_file, not both" if has_token
                             else "a token needs token or token_file",
                             fix='token: "${SOME_ENV_VAR}", or token_file: /run/secrets/name')
        if has_file and isinstance(data["token_file"], (str, Path)):
            path = _resolve_path(Path(data["token_file"]), info)
            try:
                content = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise FieldError(f"token_file {path}: {getattr(exc, 'strerror', None) or exc}",
                                 fix="check the path and that the receiver may read it") from None
            if not content:
                raise FieldError(f"token_file {path} is empty", fix="write the token into it")
            data = {**data, "token": content, "token_file": path}
        return data


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthSettings(FrozenModel):
    tokens: tuple[TokenSettings, ...] = ()
    required: bool | None = None  # None: required when binding a non-loopback address
    # /metrics is open (Prometheus scrapes without credentials unless told); a role here makes it need a token.
    metrics_role: Role | None = None

    @field_validator("tokens")
    @classmethod
    def _unique(cls, tokens: tuple[TokenSettings, ...]) -> tuple[TokenSettings, ...]:
        names = [t.name for t in tokens]
        dup_names = sorted({n for n in names if names.count(n) > 1})
        if dup_names:
            raise FieldError(f"token names must be unique: {', '.join(dup_names)} used more than once",
                             fix="rename one of them")
        secrets = [t.token for t in tokens]
        dup = [t.name for i, t in enumerate(tokens) if t.token in secrets[:i]]
        if dup:
            raise FieldError(f"token {dup[0]} has the same value as another token",
                             fix="give every client its own token, so that roles and logs can tell them apart")
        return tokens

    @model_validator(mode="after")
    def _tokens_if_required(self) -> "AuthSettings":
        if self.required and not self.tokens:
            raise FieldError("auth.required is true but no tokens are configured",
                             fix="add tokens, or remove required: true")
        return self

    def required_for(self, host: str) -> bool:
        """Whether requests need a token when the server binds `host`."""
        return self.required if self.required is not None else not is_loopback(host)


def _default_severity() -> dict[str, Level]:
    return {"critical": Level.L1, "warning": Level.L2, "info": Level.L3}


class LevelsSettings(FrozenModel):
    severity: dict[str, Level] = Field(default_factory=_default_severity)  # replaces the default mapping
    default: Level = Level.L3


# --- channels and routes ----------------------------------------------------------------------------------

_KNOWN_TYPES = ", ".join(SETTINGS_BY_TYPE)


def _check_channel_type(value: Any) -> Any:
    # Checked here rather than by the union so the error says what is wrong and lists the types.
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, dict):
        raise FieldError(f"a channel is a mapping, got {type(value).__name__}", fix="write e.g. {type: log}")
    kind = value.get("type")
    if kind is None:
        raise FieldError('missing required key "type"', fix=f"add type: one of {_KNOWN_TYPES}")
    if kind not in SETTINGS_BY_TYPE:
        close = difflib.get_close_matches(str(kind), SETTINGS_BY_TYPE, n=1)
        hint = f'did you mean "{close[0]}"? ' if close else ""
        raise FieldError(f'unknown channel type "{kind}"', fix=f"{hint}known types: {_KNOWN_TYPES}")
    return value


def _channel_tag(value: Any) -> str | None:
    return value.type if isinstance(value, BaseModel) else value.get("type")


ChannelSettings = Annotated[
    Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in SETTINGS_BY_TYPE.items())],  # type: ignore[misc]
    Discriminator(_channel_tag),
    BeforeValidator(_check_channel_type),
]


# --- delivery, retention, server, templates ---------------------------------------------------------------


class RetrySettings(FrozenModel):
    initial: PositiveDuration = dt.timedelta(seconds=5)
    max_backoff: PositiveDuration = dt.timedelta(minutes=5)
    give_up_after: PositiveDuration = dt.timedelta(hours=1)
    # Attempts before a message is dead, whichever comes first of it and give_up_after; None: no limit. A manual
    # retry (POST /api/v1/notifications/{id}/retry) of a message past it gets one more attempt.
    max_attempts: Annotated[Integer, Field(ge=1)] | None = None
    jitter: Annotated[Number, Field(ge=0, le=1)] = 0.1

    @model_validator(mode="after")
    def _order(self) -> "RetrySettings":
        if self.max_backoff < self.initial:
            raise FieldError("max_backoff is shorter than initial", fix="make max_backoff at least initial")
        return self


class DeliverySettings(FrozenModel):
    retry: RetrySettings = Field(default_factory=RetrySettings)
    group_summary_over: Annotated[Integer, Field(ge=1)] = 20
    # How long an engine holds a claimed message before another may take it: longer than any channel's
    # timeouts, short enough that a message claimed by a process that died goes out soon after.
    lease: Annotated[Duration, at_least(dt.timedelta(seconds=1))] = dt.timedelta(minutes=2)


class RetentionSettings(FrozenModel):
    days: Annotated[Integer, Field(ge=1)] = 90
    raw_bodies_days: Annotated[Integer, Field(ge=1)] = 3
    rejected_max: Annotated[Integer, Field(ge=1)] = 10_000


class ServerSettings(FrozenModel):
    host: NonEmpty = "127.0.0.1"
    port: Annotated[Integer, Field(ge=1, le=65535)] = 9095
    max_body_size: Annotated[ByteSize, Field(ge=1024)] = 64 * 2**20
    keep_raw_bodies: bool = True
    public_url: str | None = None  # base of links in messages, e.g. https://alerts.example.org
    allowed_hosts: AllowedHosts = ()  # Host names served besides loopback and public_url's (DNS rebinding)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value).rstrip("/")


class TemplatesSettings(FrozenModel):
    dir: Path | None = None  # overrides of the built-in templates, file by file

    @field_validator("dir")
    @classmethod
    def _exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        value = _resolve_path(value, info)
        if value is not None and not value.is_dir():
            raise FieldError(f"{value} is not a directory", fix="create it or fix the path")
        return value


# --- the whole file ---------------------------------------------------------------------------------------


class Config(FrozenModel):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    levels: LevelsSettings = Field(default_factory=LevelsSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    channels: dict[Name, ChannelSettings] = {}
    routes: tuple[RouteSettings, ...] = ()  # after validation the last one is always the default route
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    templates: TemplatesSettings = Field(default_factory=TemplatesSettings)
    deadman: DeadmanSettings = Field(default_factory=DeadmanSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    people: dict[Name, Person] = {}
    schedules: dict[Name, Schedule] = {}
    sla: SlaSettings = Field(default_factory=SlaSettings)
    time_intervals: TimeIntervals = {}  # for routes' mute_time_intervals / active_time_intervals

    _source: str | None = PrivateAttr(default=None)
    _resolved: tuple[ResolvedRoute, ...] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _implicit_default_route(cls, data: Any) -> Any:
        """Append the default route (every level → log) when the last route has matchers or there are no
        routes; define the built-in log channel when a route needs it (that implicit route, a default route
        that leaves a level out, or any route naming "log") and the file does not define it. Works on the raw
        mapping; anything malformed is left for field validation to report."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v is not None}  # `channels:` with nothing under it
        routes = data.get("routes", [])
        if not isinstance(routes, (list, tuple)):
            return data
        # exclude_unset: a key the route did not name must stay unnamed, or it would stop inheriting.
        routes = [r.model_dump(by_alias=True, exclude_unset=True) if isinstance(r, RouteSettings) else r
                  for r in routes]
        last = routes[-1] if routes else None
        if last is None or (isinstance(last, dict) and last.get("matchers")):
            routes = data["routes"] = [*routes, IMPLICIT_DEFAULT_ROUTE]
        channels = data.get("channels", {})
        if isinstance(channels, dict) and "log" not in channels and _needs_log(routes):
            data["channels"] = {**channels, "log": {"type": "log"}}
        return data

    @model_validator(mode="after")
    def _cross_check(self) -> "Config":
        problems = list(_check_routes(self)) + _check_schedules(self) + check_people_routing(self)
        problems += check_sla(self.sla, self.channels)
        problems += check_route_intervals(self)
        if problems:
            raise ConfigError(problems)  # not a ValueError: pydantic lets it through with all problems
        return self

    @property
    def source(self) -> str | None:
        """The file this config was loaded from; None when running on defaults."""
        return self._source

    @property
    def from_defaults(self) -> bool:
        return self._source is None

    @property
    def default_route(self) -> RouteSettings:
        return self.routes[-1]

    def resolved_routes(self) -> list[ResolvedRoute]:
        """Every route with levels, channels and timers filled in from the default route; the default last."""
        if self._resolved is None:
            self._resolved = resolve_routes(self.routes, self.escalation, self.sla)
        return list(self._resolved)

    def unused_channels(self) -> list[str]:
        """Channels no route names (worth a warning in check-config, not an error)."""
        used = {n for r in self.resolved_routes() for names in r.channels.values() for n in names}
        used |= {n for r in self.resolved_routes() for ts in r.targets.values() for t in ts for n in t.via}
        used |= {n for s in self.schedules.values() for n in s.fallback}
        used |= set(self.sla.notify)
        return [name for name in self.channels if name not in used]


def _needs_log(routes: list[Any]) -> bool:
    last = routes[-1]
    if isinstance(last, dict) and isinstance(last.get("levels"), dict):
        if not {getattr(k, "value", k) for k in last["levels"]} >= {"L1", "L2", "L3"}:
            return True  # the level left out goes to log (routes.FALLBACK_CHANNELS)
    for route in routes:
        levels = route.get("levels") if isinstance(route, dict) else None
        if isinstance(levels, dict) and any(isinstance(v, (list, tuple)) and "log" in v for v in levels.values()):
            return True
    return isinstance(last, dict) and last.get("levels") is None


def _check_schedules(config: Config) -> list[ConfigProblem]:
    return [ConfigProblem(key_path(("schedules", name, "rotations", i, "participants")),
                          f'"{person}" is not one of the people', f"define {person} under people:, or fix the name")
            for name, schedule in config.schedules.items() for i, rotation in enumerate(schedule.rotations)
            for person in rotation.participants if person not in config.people]


def _check_routes(config: Config) -> list[ConfigProblem]:
    problems = []
    last = len(config.routes) - 1
    for i, route in enumerate(config.routes[:-1]):
        if not route.matchers:
            problems.append(ConfigProblem(
                key_path(("routes", i)),
                "route has no matchers, but only the last route may go without: it is the default route, "
                "and there can be only one default route",
                'add matchers, or make it the last route; to match everything write alertname=~".+"'))
    if config.default_route.continue_:
        problems.append(ConfigProblem(key_path(("routes", last, "continue")),
                                      "continue has no effect on the default route: it is the last",
                                      "remove continue"))
    names = [r.name for r in config.routes if r.name]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(ConfigProblem("routes", f'route name "{name}" is used more than once', "rename one"))
    if not config.reconcile.alertmanagers:
        for i, route in enumerate(config.routes):
            if route.ack_silence:
                problems.append(ConfigProblem(key_path(("routes", i, "ack_silence")),
                                              "ack_silence needs an Alertmanager to create the silence in",
                                              "list the Alertmanager URLs under reconcile.alertmanagers"))
    defined = sorted(config.channels)
    for i, route in enumerate(config.routes):
        where = ", ".join(map(str, route.matchers)) or "default"
        for level, channel_names in route.levels.items():
            for name in channel_names:
                if not isinstance(name, str):
                    continue  # a schedule or person target: config/people_routing.py checks it
                if name not in config.channels:
                    close = difflib.get_close_matches(name, defined, n=1)
                    hint = f'did you mean "{close[0]}"? or ' if close else ""
                    problems.append(ConfigProblem(
                        key_path(("routes", i, "levels", level.value)),
                        f'undefined channel "{name}" (route {where})',
                        f"{hint}define it under channels:" + (f", or use one of: {', '.join(defined)}"
                                                               if defined else "")))
    return problems
