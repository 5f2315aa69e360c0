"""Templates: built-ins render for every kind and level, an override replaces one file, any template error
falls back to the minimal message (and is reported), the sandbox holds, and `templates check` finds problems."""

from __future__ import annotations

import datetime as dt
import logging

import jinja2
import pytest
from click.testing import CliRunner
from jinja2.sandbox import SecurityError

from receiver.cli import main
from receiver.domain import Level, NotificationKind
from receiver.render import Renderer, check_templates

from ..support.messages import T0, make_alert, make_message

BUILT_IN = ["email/body.html", "email/body.txt.j2", "email/subject.j2", "log/text.j2", "msteams/alert.j2",
            "msteams/title.j2", "pagerduty/alert_summary.j2", "slack/alert.j2", "slack/text.j2", "slack/title.j2",
            "twilio_sms/body.j2"]


def test_built_in_templates_pass_the_check():
    assert check_templates(None) == []


def test_every_built_in_template_is_listed():
    names = sorted(Renderer().env.list_templates())
    assert names == BUILT_IN


@pytest.mark.parametrize("kind", [k.value for k in NotificationKind])
@pytest.mark.parametrize("level", [lvl.value for lvl in Level])
def test_built_ins_render_without_falling_back(kind, level, template_errors, renderer):
    message = make_message(3, kind=kind, level=level)
    for name in BUILT_IN:
        if name.rsplit("/", 1)[1].startswith("alert"):
            assert renderer.render_alert(name, message, message.alerts[0])
        else:
            assert renderer.render_message(name, message)
    assert template_errors == []


def test_an_override_replaces_one_template(tmp_path, template_errors):
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "text.j2").write_text("CUSTOM {{ title }} / {{ alerts|length }}")
    renderer = Renderer(tmp_path, on_error=template_errors)
    message = make_message(2)
    assert renderer.render_message("slack/text.j2", message) == "CUSTOM [L1 FIRING] HighCPUUsage (2 alerts) / 2"
    assert renderer.render_message("slack/title.j2", message) == Renderer().render_message("slack/title.j2", message)
    assert template_errors == []


BROKEN = [
    ("syntax", "{% if %}", jinja2.TemplateSyntaxError),
    ("unclosed", "{% for a in alerts %}{{ a }}", jinja2.TemplateSyntaxError),
    ("undefined attribute", "{{ nothing.here }}", jinja2.UndefinedError),
    ("division", "{{ 1 / 0 }}", ZeroDivisionError),
    ("sandbox: python internals", "{{ ''.__class__.__mro__ }}", SecurityError),
    ("sandbox: globals", "{{ cycler.__init__.__globals__ }}", SecurityError),
    ("sandbox: mutating labels", "{{ alerts[0].labels.update({'severity': 'none'}) }}", SecurityError),
    ("sandbox: huge range", "{% for i in range(10**9) %}{% endfor %}", OverflowError),
]


@pytest.mark.parametrize("source,error", [(s, e) for _, s, e in BROKEN], ids=[i for i, _, _ in BROKEN])
def test_a_broken_override_falls_back_to_the_minimal_message(tmp_path, template_errors, caplog, source, error):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "text.j2").write_text(source)
    message = make_message(2)
    text = Renderer(tmp_path, on_error=template_errors).render_message("log/text.j2", message)
    assert text.splitlines() == [
        "[L1 FIRING] HighCPUUsage (2 alerts)",
        f"- HighCPUUsage on api-gw-1.internal:9100 — CPU usage above 90% on api-gw-1 {message.alerts[0].url}",
        f"- HighCPUUsage on api-gw-2.internal:9100 — CPU usage above 90% on api-gw-2 {message.alerts[1].url}",
        "https://alerts.example.org",
    ]
    [(name, exc)] = template_errors
    assert name == "log/text.j2" and isinstance(exc, error)
    assert message.alerts[0].labels["severity"] == "critical"  # nothing mutated
    [record] = [r for r in caplog.records if r.name == "receiver.render"]
    assert record.levelno == logging.ERROR and record.template == "log/text.j2"


def test_the_sandbox_remembers_safe_attributes_without_letting_an_unsafe_one_through(tmp_path, template_errors):
    """One Renderer serves every message: after safe reads of the labels and of an alert, unsafe attributes of the
    very same types are still refused (the sandbox's verdicts are kept per type and attribute name)."""
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "text.j2").write_text("{{ alerts[0].labels.get('severity') }} {{ alerts[0].alertname }}")
    (tmp_path / "log" / "title.j2").write_text("{{ alerts[0].labels.pop('severity') }}")
    renderer = Renderer(tmp_path, on_error=template_errors)
    message = make_message(1)
    for _ in range(2):
        assert renderer.render_message("log/text.j2", message) == "critical HighCPUUsage"
        renderer.render_message("log/title.j2", message)
    assert [type(exc) for _, exc in template_errors] == [SecurityError, SecurityError]
    assert message.alerts[0].labels["severity"] == "critical"


def test_a_per_alert_template_falls_back_to_one_line(tmp_path, template_errors):
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "alert.j2").write_text("{{ 1 / 0 }}")
    message = make_message(1)
    text = Renderer(tmp_path, on_error=template_errors).render_alert("slack/alert.j2", message, message.alerts[0])
    assert text == f"HighCPUUsage on api-gw-1.internal:9100 — CPU usage above 90% on api-gw-1 {message.alerts[0].url}"


def test_an_html_fallback_is_escaped(tmp_path, template_errors):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "body.html").write_text("{% broken")
    alert = make_alert(annotations={"summary": "<script>alert(1)</script>"})
    html = Renderer(tmp_path, on_error=template_errors).render_message("email/body.html", make_message((alert,)))
    assert html.startswith("<pre>") and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_a_failing_on_error_callback_does_not_drop_the_message(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "text.j2").write_text("{{ 1 / 0 }}")

    def on_error(name, exc):
        raise RuntimeError("metrics are down")

    assert Renderer(tmp_path, on_error=on_error).render_message("log/text.j2", make_message()).startswith("[L1 FIRING]")


FILTERS = [
    ("since", "{{ t|since }}", {"t": T0 - dt.timedelta(hours=1, minutes=30, seconds=5)}, "1h30m"),
    ("since explicit now", "{{ t|since(t2) }}", {"t": T0, "t2": T0 + dt.timedelta(seconds=45)}, "45s"),
    ("since in the future", "{{ t|since }}", {"t": T0 + dt.timedelta(minutes=5)}, "0s"),
    ("duration", "{{ d|duration }}", {"d": dt.timedelta(days=2, hours=3, minutes=4)}, "2d3h"),
    ("cut", "{{ s|cut(5) }}", {"s": "abcdefgh"}, "abcd…"),
    ("cut short", "{{ s|cut(5) }}", {"s": "abc"}, "abc"),
    ("one_line", "{{ s|one_line }}", {"s": "a\n b\tc"}, "a b c"),
    ("iso", "{{ t|iso }}", {"t": T0}, "2026-11-23T09:00:00.000000Z"),
    ("labels", "{{ l|labels }}", {"l": {"b": "2", "alertname": "X", "a": "1"}}, "a=1, b=2"),
    ("mrkdwn", "{{ s|mrkdwn }}", {"s": "<!here> & <b>"}, "&lt;!here&gt; &amp; &lt;b&gt;"),
]


@pytest.mark.parametrize("source,context,expected", [(s, c, e) for _, s, c, e in FILTERS], ids=[i for i, *_ in FILTERS])
def test_filters(source, context, expected):
    assert Renderer().env.from_string(source).render(now=T0, **context) == expected


# --- templates check --------------------------------------------------------------------------------------


def write(directory, name: str, text: str):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_check_names_the_file_and_line_of_each_problem(tmp_path):
    syntax = write(tmp_path, "slack/text.j2", "line one\n{% if %}\n")
    undefined = write(tmp_path, "email/subject.j2", "{{ title }}\n{{ mesage.kind }}\n")
    missing_label = write(tmp_path, "msteams/alert.j2", "{{ alert.labels.cluster }}")
    write(tmp_path, "log/text.j2", "{{ title }} {{ alert.labels.get('x', '') if alert is defined else '' }}")
    problems = check_templates(tmp_path)
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"{undefined}:2: UndefinedError: 'mesage' is undefined")
    assert problems[1].startswith(f"{missing_label}:1: UndefinedError:") and "cluster" in problems[1]
    assert problems[2].startswith(f"{syntax}:2: TemplateSyntaxError:")


def test_check_finds_a_sandbox_violation(tmp_path):
    path = write(tmp_path, "log/text.j2", "{{ title }}\n{{ ''.__class__.__mro__ }}")
    [problem] = check_templates(tmp_path)
    assert problem.startswith(f"{path}:2: SecurityError:")


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), env={"RECEIVER_CONFIG": None}, catch_exceptions=False)

    return invoke


def test_cli_check_passes_on_the_built_ins(run):
    result = run("templates", "check")
    assert result.exit_code == 0, result.output
    assert "built-in templates: OK" in result.output


def test_cli_check_fails_naming_a_broken_override(run, tmp_path):
    broken = write(tmp_path / "templates", "email/body.html", "<p>{{ title }</p>")
    config = write(tmp_path, "receiver.yml", "templates:\n  dir: templates\n")
    result = run("templates", "check", "-c", str(config))
    assert result.exit_code == 1
    assert f"{broken}:1: TemplateSyntaxError" in result.output
    assert "1 problem(s)" in result.output


def test_cli_check_passes_on_a_good_override(run, tmp_path):
    write(tmp_path / "templates", "slack/text.j2", "{{ title }} — {{ alerts|length }} listed")
    config = write(tmp_path, "receiver.yml", "templates:\n  dir: templates\n")
    result = run("templates", "check", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
