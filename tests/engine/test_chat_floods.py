"""No floods (issue #18): twenty L1 groups repeating for an hour on an injected clock, through the real dispatcher
and the real chat channel classes, each provider's HTTP API answered by `responses`. Counted per channel: the
requests that post a message (and, for threading channels, the edits of roots, which post nothing new).

Without the digest each chat channel would get 20 first pages + 80 repeats = 100 posts. With it (the default
`repeat_digest`: a 1-minute window, 3 groups or more) each gets 28: 20 first pages and 8 digests (four repeat
rounds; the groups' repeats arise over a minute, so each round straddles one minute boundary: 16 + 4 groups).
The threading channels (Slack app, Telegram) post their 20 roots and the same 8 digests, and edit nothing: a
digest is no reply in a thread.

T0 is Monday 2026-11-23 09:00 UTC; L1 repeats every 15 minutes by default.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
import requests
import responses
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.registry import build_channels
from receiver.engine.delivery import Dispatcher
from receiver.render import Renderer

from .harness import Ladder, body_with

SLACK_HOOK = "https://hooks.slack.com/services/T0/B0/flood-test"
MM_HOOK = "https://mattermost.example.org/hooks/flood-test-0123456789"
GCHAT_HOOK = "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k&token=t"
TEAMS_HOOK = "https://example.webhook.office.com/webhookb2/flood-test"
TG_TOKEN = "123456:" + "F" * 30

CHAT_CHANNELS = {
    "slack": {"type": "slack", "webhook_url": SLACK_HOOK, "rate_limit_per_second": 1000},
    "mattermost": {"type": "mattermost", "webhook_url": MM_HOOK, "rate_limit_per_second": 1000},
    "google-chat": {"type": "google_chat", "webhook_url": GCHAT_HOOK, "rate_limit_per_second": 1000},
    "teams": {"type": "msteams", "webhook_url": TEAMS_HOOK},
    "slack-app": {"type": "slack_app", "bot_token": "xoxb-flood-0", "channel": "C0FLOOD", "rate_limit_per_second": 1000},
    "telegram": {"type": "telegram", "bot_token": TG_TOKEN, "chat_id": -100123, "rate_limit_per_minute": 60},
}
POSTS = {  # channel → (URL pattern of a post, of an edit)
    "slack": (re.compile(re.escape(SLACK_HOOK)), None),
    "mattermost": (re.compile(re.escape(MM_HOOK)), None),
    "google-chat": (re.compile(re.escape(GCHAT_HOOK.split("?")[0])), None),
    "teams": (re.compile(re.escape(TEAMS_HOOK)), None),
    "slack-app": (re.compile(r"https://slack\.com/api/chat\.postMessage"), re.compile(r"https://slack\.com/api/chat\.update")),
    "telegram": (re.compile(rf"https://api\.telegram\.org/bot{re.escape(TG_TOKEN)}/sendMessage"),
                 re.compile(rf"https://api\.telegram\.org/bot{re.escape(TG_TOKEN)}/editMessageText")),
}
_IDS = itertools.count(1)


def _answer_json(request):
    """What each platform answers a post: Slack's Web API a channel and ts, Telegram the message, the webhooks ok."""
    n = next(_IDS)
    if "slack.com/api" in request.url:
        answer = {"ok": True, "channel": "C0FLOOD", "ts": f"1700000000.{n:06d}"}
    elif "api.telegram.org" in request.url:
        answer = {"ok": True, "result": {"message_id": n, "date": 1700000000, "chat": {"id": -100123}}}
    else:
        answer = {"ok": True}
    return 200, {"Content-Type": "application/json"}, json.dumps(answer)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for post, edit in POSTS.values():
            for pattern in (post, edit) if edit is not None else (post,):
                mock.add_callback(responses.POST, pattern, callback=_answer_json)
        yield mock


@pytest.fixture
def ladder(make_config, clock, api):
    config = make_config(channels={**CHAT_CHANNELS, "pager": {"type": "log"}},
                         routes=[{"levels": {"L1": [*CHAT_CHANNELS, "pager"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    lad.dispatcher.close()
    session = requests.Session()
    lad.channels = build_channels(config.channels, renderer=Renderer(), http=session)
    lad.dispatcher = Dispatcher(lad.writes, config, lad.channels, clock=clock, worker="flood", rng=lambda: 0.5)
    yield lad
    lad.close()
    session.close()
    app.extensions["alert_receiver"].db.dispose()


def _count(api, pattern) -> int:
    return sum(1 for call in api.calls if pattern is not None and pattern.match(call.request.url))


def test_twenty_groups_repeating_for_an_hour_post_28_messages_per_chat_channel(ladder, api):
    ladder.clock.advance(1)
    for n in range(20):  # twenty Alertmanager groups, 09:00:01 to 09:00:58
        ladder.post(body_with("g_routing_critical", cluster=f"c{n:02d}"))
        ladder.clock.advance(3)
    for _ in range(4 * 61):  # an hour and a minute, ticking every 15 s
        ladder.clock.advance(15)
        ladder.tick()
        ladder.deliver()
    counts = {name: (_count(api, post), _count(api, edit)) for name, (post, edit) in POSTS.items()}
    assert counts == {name: (28, 0) for name in POSTS}, counts
    repeats = ladder.client.get("/api/v1/notifications?kind=repeat&limit=1000").get_json()["notifications"]
    by_channel = {name: [n for n in repeats if n["channel"] == name] for name in [*CHAT_CHANNELS, "pager"]}
    # Every repeat is still recorded, and sent: 80 per channel; the pager (no digest) posts each one.
    assert {name: len(found) for name, found in by_channel.items()} == {name: 80 for name in by_channel}
    assert {n["status"] for n in repeats} == {"sent"}

