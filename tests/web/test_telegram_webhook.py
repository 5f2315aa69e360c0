"""POST /integrations/telegram: the Acknowledge / Resolve buttons of the telegram channel's messages, as Telegram
delivers their callback queries: authenticated by X-Telegram-Bot-Api-Secret-Token (the setWebhook secret_token,
which Telegram sends as written), acting as telegram:<username>, once per update_id."""

from __future__ import annotations

import itertools
import json

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

from ..support.fixtures import raw

SECRET = "tg-webhook-secret_0123-ABC"
TOKEN = "123456789:tg-bot-token-AAbbCCddEEff00"
CHAT = -1001234567890
HEADER = "X-Telegram-Bot-Api-Secret-Token"
_UPDATES = itertools.count(100)


@pytest.fixture
def tg_client(make_config, clock):
    config = make_config(channels={"tg": {"type": "telegram", "bot_token": TOKEN, "chat_id": CHAT,
                                          "webhook_secret": SECRET}},
                         routes=[{"levels": {"L1": ["tg"], "L2": ["tg"], "L3": ["tg"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


def update(data: str, *, update_id: int | None = None, username: str | None = "alice", user_id: int = 5551234,
           chat: int = CHAT, query_id: str = "4382bfdwdsb323b2d9") -> bytes:
    """A callback query Update as Telegram sends it for a click on one of the bot's inline buttons."""
    sender = {"id": user_id, "is_bot": False, "first_name": "Alice", "language_code": "en"}
    if username is not None:
        sender["username"] = username
    return json.dumps({"update_id": next(_UPDATES) if update_id is None else update_id, "callback_query": {
        "id": query_id, "from": sender, "chat_instance": "-7612345678901234567", "data": data,
        "message": {"message_id": 42, "date": 1700000000, "text": "[L1 FIRING] HighCPU (1 alert)",
                    "chat": {"id": chat, "type": "supergroup", "title": "SRE alerts"},
                    "from": {"id": 123456789, "is_bot": True, "first_name": "alerts"}}}}).encode()


def headers(secret: str | None = SECRET) -> dict:
    return {"Content-Type": "application/json", **({HEADER: secret} if secret is not None else {})}


def post(client, body: bytes, secret: str | None = SECRET):
    return client.post("/integrations/telegram", data=body, headers=headers(secret))


def firing(client, capture: str = "g_routing_critical") -> list[dict]:
    assert client.post("/webhook", data=raw(capture), content_type="application/json").status_code == 200
    return client.get("/api/v1/alerts").get_json()["alerts"]


def alert(client, alert_id: int) -> dict:
    return client.get(f"/api/v1/alerts/{alert_id}").get_json()


def events(client, alert_id: int, kind: str) -> list[dict]:
    return [e for e in alert(client, alert_id)["timeline"] if e["kind"] == kind]


def answered(resp, query_id: str = "4382bfdwdsb323b2d9") -> str:
    """The text of the webhook reply's answerCallbackQuery (Telegram performs it: the spinner stops)."""
    assert resp.status_code == 200, (resp.status_code, resp.data[:300])
    doc = resp.get_json()
    assert doc["method"] == "answerCallbackQuery" and doc["callback_query_id"] == query_id, doc
    assert len(doc["text"]) <= 200
    return doc["text"]


def test_a_valid_callback_acknowledges_as_the_telegram_user(tg_client):
    [a] = firing(tg_client)
    assert answered(post(tg_client, update(f"ack:alert:{a['id']}"))) == "Acknowledged."
    now = alert(tg_client, a["id"])
    assert now["acked_by"] == "telegram:alice"
    [acked] = events(tg_client, a["id"], "acked")
    assert acked["actor"] == "telegram:alice" and acked["comment"] == "from Telegram"


def test_a_user_without_username_acts_by_id(tg_client):
    [a] = firing(tg_client)
    answered(post(tg_client, update(f"ack:alert:{a['id']}", username=None, user_id=987654321)))
    assert alert(tg_client, a["id"])["acked_by"] == "telegram:987654321"


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper(), TOKEN],
                         ids=["missing", "empty", "wrong", "prefix", "longer", "case", "bot-token"])
def test_a_missing_or_wrong_secret_token_is_401_and_changes_nothing(tg_client, secret):
    [a] = firing(tg_client)
    resp = post(tg_client, update(f"ack:alert:{a['id']}"), secret=secret)
    assert resp.status_code == 401 and resp.get_json()["error"] == "bad_signature"
    after = alert(tg_client, a["id"])
    assert after["acked_at"] is None and events(tg_client, a["id"], "acked") == []


def test_a_retried_update_acts_once(tg_client):
    [a] = firing(tg_client)
    body = update(f"ack:alert:{a['id']}", update_id=7001)
    assert answered(post(tg_client, body)) == "Acknowledged."
    # Someone un-acknowledges in the API; Telegram then redelivers the same update (it did not see our 200).
    assert tg_client.post(f"/api/v1/alerts/{a['id']}/unack", json={"actor": "bob"}).status_code == 200
    again = post(tg_client, body)
    assert answered(again) == "Done already." and again.get_json()["status"] == "duplicate"
    assert alert(tg_client, a["id"])["acked_at"] is None
    assert len(events(tg_client, a["id"], "acked")) == 1
    # A new click (a new update_id) acts again.
    assert answered(post(tg_client, update(f"ack:alert:{a['id']}", update_id=7002))) == "Acknowledged."


def test_the_resolve_button_resolves(tg_client):
    [a] = firing(tg_client)
    assert answered(post(tg_client, update(f"resolve:alert:{a['id']}"))) == "Resolved."
    now = alert(tg_client, a["id"])
    assert now["status"] == "resolved" and now["resolved_by"] == "telegram:alice"
    assert events(tg_client, a["id"], "resolved")[0]["actor"] == "telegram:alice"
    assert answered(post(tg_client, update(f"resolve:alert:{a['id']}"))) == "This alert is resolved already."
    assert answered(post(tg_client, update(f"ack:alert:{a['id']}"))) == "This alert is resolved already."
    assert answered(post(tg_client, update("ack:alert:999999"))) == "This alert no longer exists."


def test_group_buttons_act_on_every_open_alert_of_the_group(tg_client):
    alerts = firing(tg_client, "b_group_5_firing")
    [group] = {a["group_id"] for a in alerts}
    assert answered(post(tg_client, update(f"ack:group:{group}"))) == "Acknowledged 5 alerts."
    assert all(alert(tg_client, a["id"])["acked_by"] == "telegram:alice" for a in alerts)
    assert answered(post(tg_client, update(f"ack:group:{group}"))) == "Already acknowledged."
    assert answered(post(tg_client, update(f"resolve:group:{group}", username="bob"))) == "Resolved 5 alerts."
    for a in alerts:
        now = alert(tg_client, a["id"])
        assert now["status"] == "resolved" and now["resolved_by"] == "telegram:bob"
    assert answered(post(tg_client, update(f"resolve:group:{group}"))) == "Nothing is firing in this group."


def test_a_button_from_another_chat_does_nothing(tg_client):
    [a] = firing(tg_client)
    text = answered(post(tg_client, update(f"ack:alert:{a['id']}", chat=-100999)))
    assert "not from the alert chat" in text and alert(tg_client, a["id"])["acked_at"] is None


@pytest.mark.parametrize("data", ["", "ack", "escalate:alert:1", "ack:alert:abc", "ack:group:nothex", "x" * 64])
def test_callback_data_that_is_not_ours_is_answered_and_changes_nothing(tg_client, data):
    # 200 with an answer, not 4xx: Telegram retries a non-2xx answer, and a retry cannot make the data ours.
    [a] = firing(tg_client)
    assert "not one alert-receiver understands" in answered(post(tg_client, update(data)))
    assert alert(tg_client, a["id"])["acked_at"] is None


def test_other_updates_are_ignored_with_200(tg_client):
    message = {"update_id": 9001, "message": {"message_id": 1, "date": 1, "text": "/ack 1",
                                              "chat": {"id": CHAT, "type": "supergroup"}}}
    resp = post(tg_client, json.dumps(message).encode())
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored" and "method" not in resp.get_json()


def test_without_a_webhook_secret_the_endpoint_is_off(make_config, clock):
    config = make_config(channels={"tg": {"type": "telegram", "bot_token": TOKEN, "chat_id": CHAT}},
                         routes=[{"levels": {"L1": ["tg"], "L2": ["tg"], "L3": ["tg"]}}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    try:
        resp = post(app.test_client(), update("ack:alert:1"))
        assert resp.status_code == 404 and resp.get_json()["error"] == "not_configured"
    finally:
        app.extensions["alert_receiver"].db.dispose()


def test_the_ack_tells_the_channel_so_the_engine_can_edit_the_root(tg_client):
    [a] = firing(tg_client)
    answered(post(tg_client, update(f"ack:alert:{a['id']}")))
    listed = tg_client.get("/api/v1/notifications").get_json()["notifications"]
    assert any(n["kind"] == "acknowledged" and n["channel"] == "tg" for n in listed), listed


def test_end_to_end_root_click_reply_and_edit(tg_client, clock):
    """Through the dispatcher with Telegram's Bot API mocked: the first page posts a root with the keyboard; a click
    acknowledges; the engine then replies in the thread and edits the root to show who acknowledged."""
    import requests
    import responses

    from receiver.channels.registry import build_channels
    from receiver.engine.delivery import Dispatcher
    from receiver.render import Renderer

    svc = tg_client.application.extensions["alert_receiver"]
    api = f"https://api.telegram.org/bot{TOKEN}"
    result = {"message_id": 42, "chat": {"id": CHAT, "type": "supergroup"}, "date": 1, "text": "x"}
    [a] = firing(tg_client)
    with requests.Session() as http, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("sendMessage", "editMessageText"):
            mock.post(f"{api}/{method}", json={"ok": True, "result": result})
        dispatcher = Dispatcher(svc.writes, svc.config, build_channels(svc.config.channels, renderer=Renderer(),
                                                                       http=http),
                                clock=clock, worker="telegram-e2e", rng=lambda: 0.5)

        def drain() -> list[tuple[str, dict]]:
            before = len(mock.calls)
            for _ in range(10):
                if not dispatcher.run_once().handled:
                    break
            return [(c.request.url.rsplit("/", 1)[1], json.loads(c.request.body)) for c in mock.calls[before:]]

        [(method, root)] = drain()
        assert method == "sendMessage" and "reply_parameters" not in root
        assert [b["callback_data"] for b in root["reply_markup"]["inline_keyboard"][0]] == [
            f"ack:alert:{a['id']}", f"resolve:alert:{a['id']}"]
        answered(post(tg_client, update(f"ack:alert:{a['id']}")))
        calls = drain()
        methods = [m for m, _ in calls]
        assert methods.count("sendMessage") == 1 and methods.count("editMessageText") == 1, methods
        reply = next(p for m, p in calls if m == "sendMessage")
        edit = next(p for m, p in calls if m == "editMessageText")
        assert reply["reply_parameters"]["message_id"] == 42 and "ACKNOWLEDGED" in reply["text"]
        assert edit["message_id"] == 42 and "Acknowledged by telegram:alice" in edit["text"]
        assert [b["text"] for b in edit["reply_markup"]["inline_keyboard"][0]] == ["Resolve"]
    dispatcher.close()
