"""The `twilio_sms` channel: SMS through Twilio's Messages API, one request per `to` number (or to the phone of the
person a route pages through it).

The body (`twilio_sms/body.j2`) is kept to one 160-character GSM-7 segment: level, kind, count, the first
alertname, and the alert's (or the receiver's) link when it fits. Only the levels in `levels` (default L1) are
sent: SMS is for pages.

Acknowledge by reply (issue #18): an SMS about firing alerts (kinds in REPLY_ACK_KINDS) ends in "Reply ACK 42",
42 being the outbox message's id; answering it acknowledges every firing alert that message carried
(web/twilio_sms_webhook.py, which needs server.public_url: without it no code is sent). The code always fits:
the text is cut, then the link left out, never the code. `reply_ack: false` leaves it out.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from receiver.channels.base import Channel, DeliveryError, addresses, post
from receiver.channels.markup import plain
from receiver.channels.text import cut, message_context, minimal_text, one_line
from receiver.domain import Level, Message, NotificationKind
from receiver.fields import FieldError, FrozenModel, PositiveDuration, Secret, check_url

log = logging.getLogger("receiver.channels.twilio_sms")

_E164_RE = re.compile(r"\+[1-9][0-9]{7,14}")

# Under one SMS segment of 160 GSM-7 characters. (Characters outside GSM-7, emoji for instance, make the
# segment UCS-2 and 70 characters long; Twilio then splits and joins, which costs more but still arrives.)
BODY_LIMIT = 159

# https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions: 429 (error 20429, too many
# requests) and 5xx may be retried; other 4xx (21211 invalid 'To', 20003 authentication) will not succeed.
# Both are the defaults for every channel: no extra retryable codes.
RETRYABLE_CODES: tuple[int, ...] = ()


def _phone(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads an unquoted +15551111111 as the integer 15551111111.
        raise FieldError(f"phone number {value} is not a string", fix=f'quote it: "+{value}"')
    if isinstance(value, str) and not _E164_RE.fullmatch(value):
        raise FieldError(f'"{value}" is not an E.164 phone number',
                         fix='write + and the country code, 8 to 15 digits, no spaces: "+15551234567"')
    return value


Phone = Annotated[str, BeforeValidator(_phone)]


class TwilioSmsSettings(FrozenModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    type: Literal["twilio_sms"]
    account_sid: Annotated[str, Field(min_length=1)]
    auth_token: Secret
    from_number: Phone = Field(alias="from")
    # Optional for a channel that only pages people (a route's `via:`): it then texts the person's phone.
    to: Annotated[tuple[Phone, ...], Field(min_length=1)] | None = None
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # Not in the example of docs/design.md: lets tests and proxies point the channel elsewhere.
    api_url: str = "https://api.twilio.com"
    # The levels this channel is told about at all (intents at other levels are never created).
    levels: Annotated[tuple[Level, ...], Field(min_length=1)] = (Level.L1,)
    # "Reply ACK <id>" in SMS about firing alerts (needs server.public_url for Twilio's webhook to reach us).
    reply_ack: bool = True

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


def fit_body(text: str, link: str | None, limit: int = BODY_LIMIT) -> str:
    """One line under `limit` characters, with `link` appended only when it fits whole."""
    text = one_line(text)
    if link and len(text) + 1 + len(link) <= limit:
        return f"{text} {link}"
    return cut(text, limit)


# The messages that page: a reply acknowledges their alerts. (acknowledged, resolved: nothing left to ack.)
REPLY_ACK_KINDS = frozenset({NotificationKind.FIRING.value, NotificationKind.ESCALATED.value,
                             NotificationKind.REPEAT.value, NotificationKind.SLA_ACK_BREACHED.value,
                             NotificationKind.SLA_RESOLVE_BREACHED.value})


def reply_code(message_id: int) -> str:
    """What an SMS asks for; web/twilio_sms_webhook.py parses it back."""
    return f"Reply ACK {message_id}"


class TwilioSmsChannel(Channel):
    type = "twilio_sms"
    settings: TwilioSmsSettings

    def accepts_level(self, level: str) -> bool:
        return level in {lvl.value for lvl in self.settings.levels}

    def body(self, message: Message) -> str:
        text = plain(self.renderer.render_message("twilio_sms/body.j2", message))
        if not text.strip():
            text = minimal_text(message_context(message))
        link = message.alerts[0].url if len(message.alerts) == 1 else message.receiver_url
        # Without server.public_url (message.receiver_url) Twilio has nowhere to send the reply: no code.
        if not (self.settings.reply_ack and message.receiver_url and message.kind in REPLY_ACK_KINDS
                and message.firing_count):
            return fit_body(text, link)
        code = reply_code(message.notification_id)
        # The code first: the text is cut and the link left out to make room for it, never the other way.
        return f"{fit_body(text, link, BODY_LIMIT - len(code) - 1)} {code}".lstrip()

    def numbers(self, message: Message) -> tuple[str, ...]:
        """The person paged (a route's schedule or person target), else the channel's `to`."""
        return addresses(self.name, message, self.settings.to, "phone", "phone number")

    def send(self, message: Message) -> None:
        s = self.settings
        url = f"{s.api_url.rstrip('/')}/2010-04-01/Accounts/{s.account_sid}/Messages.json"
        body = self.body(message)
        numbers = self.numbers(message)
        errors: list[DeliveryError] = []
        # Every number is tried even when one fails. A retryable failure retries the message, texting the
        # others again (at least once); permanent failures alone do not.
        for number in numbers:
            try:
                post(self.http, url, what=f"twilio messages to {number}", timeout=s.timeout,
                     retryable_codes=RETRYABLE_CODES, secrets=[s.auth_token.reveal()],
                     data={"To": number, "From": s.from_number, "Body": body},
                     auth=(s.account_sid, s.auth_token.reveal()))
            except DeliveryError as exc:
                errors.append(exc)
        if errors and not any(e.retryable for e in errors) and len(errors) < len(numbers):
            # Some numbers got it and no retry can help the others (an invalid or opted-out number): sent.
            log.warning("some SMS numbers failed", extra={"channel": self.name,
                                                          "errors": [e.reason for e in errors]})
            return
        if errors:
            retry_afters = [e.retry_after for e in errors if e.retry_after is not None]
            raise DeliveryError("; ".join(e.reason for e in errors),
                                retryable=any(e.retryable for e in errors),
                                retry_after=max(retry_afters) if retry_afters else None)
