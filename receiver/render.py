"""Message templates: a sandboxed Jinja2 environment over the built-in templates (receiver/templates/) and an
optional override directory, and `check_templates` behind `alert-receiver templates check`.

A template error never drops a notification: `Renderer.render` returns the minimal plain-text message of
channels/text.py instead, logs the error and tells `on_error` (delivery counts it in /metrics).

Every template gets the same context, `channels.text.message_context(message)`; a template whose file name
starts with `alert` (e.g. `slack/alert.j2`) is rendered once per alert and also gets `alert`. That single rule
lets `check_templates` render each template exactly as the channels will.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Mapping

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from receiver.channels import markup
from receiver.channels.text import cut, human_duration, iso, message_context, minimal_text, one_line, source_of
from receiver.domain import Level, Message, MessageAlert, NotificationKind

log = logging.getLogger("receiver.render")

HTML_SUFFIXES = (".html", ".htm")
# Templates whose output is markup other than HTML, and its escaping (slack/text.j2 is plain: the channel escapes).
MARKUP_TEMPLATES: dict[str, Callable[[str], str]] = {
    "slack/title.j2": markup.mrkdwn, "slack/alert.j2": markup.mrkdwn,
    "msteams/title.j2": markup.teams_md, "msteams/alert.j2": markup.teams_md,
}


def is_per_alert(template_name: str) -> bool:
    """Templates named `alert*` are rendered once per alert, with `alert` in their context."""
    return PurePosixPath(template_name).name.startswith("alert")


# --- filters ----------------------------------------------------------------------------------------------


@jinja2.pass_context
def _since(context: jinja2.runtime.Context, value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """`{{ alert.starts_at|since }}` → "1h30m": the time from `value` to the message's creation (`now` in the
    context), so that a rendering never reads the wall clock and a retry renders the same text."""
    if value is None:
        return ""
    now = now or context.get("now")
    if not isinstance(now, dt.datetime):
        return ""
    return human_duration(now - value)


def _labels(labels: Mapping[str, str], exclude: tuple[str, ...] | list[str] = ("alertname",)) -> str:
    """`{{ alert.labels|labels }}` → "instance=web-1, severity=critical" (sorted, alertname left out)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in exclude)


def _duration(value: dt.timedelta | None) -> str:
    return "" if value is None else human_duration(value)


FILTERS: dict[str, Callable[..., Any]] = {
    "since": _since,
    "duration": _duration,
    "cut": cut,  # {{ text|cut(200) }}: at most 200 characters, ending in … when cut
    "one_line": one_line,
    "iso": iso,
    "labels": _labels,
    "source": source_of,  # {{ alert|source }}: instance, else service, job, ...
    # Escaping for each channel's markup: mrkdwn, slack_url, teams_md, teams_url, http_url, plain.
    **markup.FILTERS,
}


# --- the renderer -----------------------------------------------------------------------------------------


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, remembering its verdict on each (type, attribute): jinja2's checks depend on nothing
    else (the name's underscores, `is_internal_attribute`, `modifies_known_mutable`: isinstance tests on the
    object's type), and making them again on every attribute of every render was a fifth of the engine's CPU
    when it delivered a burst."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._verdicts: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = super().is_safe_attribute(obj, attr, value)
        return verdict


class Renderer:
    """Renders `<channel_type>/<name>` templates: the override directory's file of that relative name when it
    has one, else the built-in. The environment is an immutable sandbox: templates come from configuration,
    must not reach Python internals, and must not mutate the labels that every channel shares."""

    def __init__(self, override_dir: Path | None = None, *,
                 on_error: Callable[[str, Exception], None] | None = None,
                 undefined: type[jinja2.Undefined] = jinja2.Undefined):
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.PackageLoader("receiver", "templates"))
        self.override_dir = override_dir
        self.on_error = on_error
        self.env = _Sandbox(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False,
                                                default=False),
            undefined=undefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates are read once: a reload builds a new Renderer. No stat() of every file per render.
            auto_reload=False,
        )
        self.env.filters.update(FILTERS)

    def render(self, template_name: str, **context: Any) -> str:
        """The rendered template, or the minimal message of `context` when anything goes wrong."""
        try:
            return self.env.get_template(template_name).render(**context).strip()
        except Exception as exc:  # a template is configuration: whatever it does, the page must still go out
            return self._fallback(template_name, context, exc)

    def _fallback(self, template_name: str, context: Mapping[str, Any], exc: Exception) -> str:
        line = template_line(exc)
        log.error("template failed, sending the minimal message instead",
                  extra={"template": template_name, "line": line, "error": f"{type(exc).__name__}: {exc}"[:500]})
        if self.on_error is not None:
            try:
                self.on_error(template_name, exc)
            except Exception:
                log.exception("on_error callback failed", extra={"template": template_name})
        text = minimal_text(context)
        if template_name.endswith(HTML_SUFFIXES):
            return f"<pre>{escape(text)}</pre>"
        # The minimal message is plain text: escaped for the markup its template would have written.
        escape_markup = MARKUP_TEMPLATES.get(template_name)
        return escape_markup(text) if escape_markup else text

    def render_message(self, template_name: str, message: Message) -> str:
        return self.render(template_name, **message_context(message))

    def render_alert(self, template_name: str, message: Message, alert: MessageAlert) -> str:
        return self.render(template_name, **message_context(message, alert=alert))


def template_line(exc: BaseException) -> int | None:
    """The template line an exception points at: a syntax error knows it; a rendering error's traceback has
    frames that Jinja rewrote to the template's file and line."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.endswith(".py"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _template_file(exc: BaseException, default: str) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return exc.filename
    found = default
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not name.endswith(".py") and not name.startswith("<"):
            found = name
        tb = tb.tb_next
    return found


# --- templates check --------------------------------------------------------------------------------------

_T = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.timezone.utc)


def _sample_alert(i: int, **kw: Any) -> MessageAlert:
    labels = {"alertname": "HighCPU", "severity": "critical", "instance": f"web-{i}:9100", "job": "node",
              "service": "web", "team": "sre"}
    values: dict[str, Any] = dict(
        id=100 + i, fingerprint=f"{i:016x}", alertname="HighCPU", status="firing", level="L1", severity="critical",
        labels=labels, annotations={"summary": f"CPU above 90% on web-{i}", "description": "Load is high.\nSee the runbook.",
                                    "runbook_url": "https://runbooks.example.org/HighCPU"},
        starts_at=_T - dt.timedelta(minutes=17), ends_at=None,
        generator_url="http://prometheus.example.org/graph?g0.expr=cpu%20%3E%200.9",
        url=f"https://alerts.example.org/alerts/{100 + i}", ack_url=f"https://alerts.example.org/ack/{100 + i}?sig=x")
    values.update(kw)
    return MessageAlert(**values)


def sample_messages() -> list[tuple[str, Message]]:
    """Messages that exercise what templates meet: one alert with every link; a mixed group with no links, an
    acked alert, HTML and unicode in labels, no annotations; a group above summary_over."""
    base = dict(notification_id=1, channel="sample", kind="firing", level="L1", group_key='{}:{alertname="HighCPU"}',
                created_at=_T, external_url="http://alertmanager.example.org")
    single = Message(alerts=(_sample_alert(1),), receiver_url="https://alerts.example.org", **base)
    mixed = Message(alerts=(
        _sample_alert(1, url=None, ack_url=None, acked_by="alice"),
        _sample_alert(2, url=None, ack_url=None, alertname="DiskFull", annotations={},
                      labels={"alertname": "DiskFull", "mountpoint": "<script>alert(1)</script>", "team": "Ωmega 🚀"}),
        _sample_alert(3, url=None, ack_url=None, status="resolved", ends_at=_T - dt.timedelta(minutes=1)),
    ), **base)
    storm = Message(alerts=tuple(_sample_alert(i) for i in range(5)), summary_over=3,
                    receiver_url="https://alerts.example.org", **base)
    return [("single", single), ("mixed", mixed), ("storm", storm)]


def _contexts(template_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for sample_name, sample in sample_messages():
        for kind in NotificationKind:
            for level in Level:
                message = dataclasses.replace(sample, kind=kind.value, level=level.value)
                where = f"sample {sample_name}, kind {kind.value}, level {level.value}"
                if is_per_alert(template_name):
                    for alert in message.shown:
                        yield f"{where}, alert {alert.id}", message_context(message, alert=alert)
                else:
                    yield where, message_context(message)


def check_templates(override_dir: Path | None) -> list[str]:
    """Render every template in use (each override, and each built-in not overridden) for every kind and
    level against the sample messages, with undefined names as errors. Returns one problem per distinct error,
    naming the template file and line when known; an empty list means every template renders."""
    renderer = Renderer(override_dir, undefined=jinja2.StrictUndefined)
    problems: list[str] = []
    names = [n for n in renderer.env.list_templates() if not any(p.startswith(".") for p in n.split("/"))]
    for name in sorted(set(names)):
        try:
            template = renderer.env.get_template(name)
        except Exception as exc:
            problems.append(_problem(exc, name, name, None))
            continue
        seen: set[str] = set()
        for where, context in _contexts(name):
            try:
                template.render(**context)
            except Exception as exc:
                text = _problem(exc, template.filename or name, name, where)
                key = text.rsplit(" (sample", 1)[0]
                if key not in seen:
                    seen.add(key)
                    problems.append(text)
    return problems


def _problem(exc: BaseException, filename: str, name: str, where: str | None) -> str:
    file = _template_file(exc, filename)
    line = template_line(exc)
    message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
    location = f"{file}:{line}" if line else file
    return f"{location}: {type(exc).__name__}: {message}" + (f" ({where})" if where else "")
