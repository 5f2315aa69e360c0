"""The OpenAPI description of the chat integrations (issue #18): the endpoints Slack, Telegram and Twilio call when
someone clicks a button or answers an SMS. Each is authenticated by the platform's own signature or secret, not by
our tokens: paths, schemas and security schemes merged into the document by openapi.py."""

from __future__ import annotations

from .openapi_build import err as _err, ok as _ok, op as _op
from .openapi_schemas import ID, STR, Schema, array, error_response, obj

_SIGNED = ("Authenticated by the platform's signature, verified before anything in the body is read; a request "
           "that fails it changes nothing.")

SCHEMAS: dict[str, Schema] = {
    "SlackInteraction": obj({"payload": {**STR, "description": "a JSON block_actions payload; only `type`, `user` "
                                                               "and `actions[].action_id`/`value` are read"}},
                            description="Slack's form-encoded interaction request"),
    "SlackInteractionResult": obj({"status": {"type": "string", "enum": ["applied", "unchanged", "ignored"]}}, {
        "reason": STR,
        "actions": array(obj({"status": {"type": "string", "enum": ["applied", "unchanged", "ignored"]}}, {
            "action": STR, "target": {**STR, "description": "the button's value: alert:<id> or group:<id>"},
            "alert_ids": array(ID), "changed": array(ID), "reason": STR}))}),
    "TelegramUpdate": {"type": "object", "required": ["update_id"],
                       "description": "a Telegram Update (https://core.telegram.org/bots/api#update); only a "
                                      "callback_query from one of our buttons is acted on",
                       "properties": {"update_id": {"type": "integer"}, "callback_query": {"type": "object"}}},
    "TelegramAnswer": {"type": "object", "description": "a webhook reply Telegram performs "
                                                        "(answerCallbackQuery: the button's spinner stops and the "
                                                        "text shows), or a note that the update was ignored",
                       "properties": {"method": {"type": "string", "enum": ["answerCallbackQuery"]},
                                      "callback_query_id": STR, "text": STR, "status": STR, "reason": STR,
                                      "update_id": {"type": "integer"}}},
    "TwilioIncomingSms": obj({"From": STR, "Body": STR, "MessageSid": STR}, {"To": STR, "AccountSid": STR},
                             description="Twilio's form-encoded incoming-message webhook; every parameter it sends "
                                         "is covered by the signature"),
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "slackSignature": {"type": "apiKey", "in": "header", "name": "X-Slack-Signature",
                       "description": "`v0=<hex HMAC-SHA256 of \"v0:\" + X-Slack-Request-Timestamp + \":\" + body>` "
                                      "under a slack_app channel's signing_secret; timestamps more than 5 minutes "
                                      "from now are refused"},
    "telegramSecretToken": {"type": "apiKey", "in": "header", "name": "X-Telegram-Bot-Api-Secret-Token",
                            "description": "the webhook_secret of a telegram channel, as given to setWebhook's "
                                           "secret_token"},
    "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
                        "description": "base64 HMAC-SHA1, under a twilio_sms channel's auth_token, of "
                                       "server.public_url + the path + every form parameter sorted by name"},
}

PATHS: dict[str, dict[str, Schema]] = {
    "/integrations/slack/interactions": {"post": _op(
        "integrations", "A click on a button of a Slack app message: acknowledge, resolve or escalate", {
            "200": _ok("SlackInteractionResult", "acted (or ignored: another payload type, an unknown button, a "
                                                 "duplicate); Slack shows no error"),
            "400": error_response("malformed_payload"), "401": error_response("bad_signature (or stale timestamp)"),
            "404": error_response("not_configured: no slack_app channel has a signing_secret"),
            "413": error_response("body_too_large: over 64 KiB"),
            "415": error_response("unsupported_media_type: not form-encoded"), "503": _err("StorageUnavailable")},
        body={"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"$ref": "#/components/schemas/SlackInteraction"}}}},
        security=[{"slackSignature": []}],
        description=_SIGNED + " The actor is `slack:<member id>`; a retried request acts once.")},
    "/integrations/telegram": {"post": _op(
        "integrations", "A Telegram bot update: a click on Acknowledge or Resolve", {
            "200": _ok("TelegramAnswer", "the answer to the click, or ignored (not a click, a duplicate)"),
            "400": error_response("malformed_update"), "401": error_response("bad_signature"),
            "404": error_response("not_configured: no telegram channel has a webhook_secret"),
            "413": error_response("body_too_large: over 256 KiB"), "503": _err("StorageUnavailable")},
        body={"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/TelegramUpdate"}}}},
        security=[{"telegramSecretToken": []}],
        description=_SIGNED + " The actor is `telegram:<username>` (or the user id); an update_id acts once.")},
    "/integrations/twilio/sms": {"post": _op(
        "integrations", "An SMS reply: `ACK <code>` acknowledges the alerts of that SMS", {
            "200": {"description": "TwiML: the reply texted back (done, refused, or how to answer)",
                    "content": {"text/xml": {"schema": STR}}},
            "400": error_response("malformed_request"), "401": error_response("bad_signature"),
            "404": error_response("not_configured: no twilio_sms channel, or no server.public_url"),
            "413": error_response("body_too_large: over 16 KiB"), "503": _err("StorageUnavailable")},
        body={"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"$ref": "#/components/schemas/TwilioIncomingSms"}}}},
        security=[{"twilioSignature": []}],
        description=_SIGNED + " Only a number the SMS went to may answer it; the actor is `sms:<person>` for a "
                              "configured person's phone, else `sms:<number>`; a MessageSid acts once.")},
}
