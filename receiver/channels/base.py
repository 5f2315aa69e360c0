"""The narrowest interface in the system: a channel sends one Message, or raises DeliveryError saying whether a
retry can help. The retry loop, bookkeeping, rate limits and logging of outcomes live once, in engine/delivery.py.
"""

from __future__ import annotations

import abc
import datetime as dt
import email.utils
import threading
import urllib.parse
from typing import TYPE_CHECKING, ClassVar, Iterable, Protocol

from pydantic import BaseModel

from receiver.domain import Message, MessageAlert, Posted
from receiver.logs import redact

BODY_QUOTED = 200  # characters of a provider's error answer quoted in a DeliveryError (and so in last_error)

if TYPE_CHECKING:
    import requests


class Renderer(Protocol):
    """What a channel asks of the template renderer (receiver.render.Renderer is the one implementation). A protocol,
    so that channels never import render.py, which builds on channels/markup.py and channels/text.py."""

    def render_message(self, template_name: str, message: Message) -> str: ...

    def render_alert(self, template_name: str, message: Message, alert: MessageAlert) -> str: ...


class DeliveryError(Exception):
    """A send that did not succeed. `retryable`: the same message may succeed later (5xx, 429, timeouts);
    otherwise it is dead at once (4xx other than 429: a retry cannot fix a bad request or a revoked key).
    `retry_after`: the provider's Retry-After, in seconds, honoured by the retry schedule. `code`: the provider's
    HTTP status or SMTP reply code when it answered one (None for a timeout or a refused connection), recorded with
    the attempt (store/attempts.py). The reason never contains a secret (webhook URLs and keys are secrets)."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None, code: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code


# The last status a provider answered on this thread (check_response, an SMTP send): the dispatcher clears it
# before a send and reads it after a successful one, to record the 2xx (or 250) with the attempt. Per thread: one
# channel's sends run on several pool threads at once.
_answered = threading.local()


def note_status(code: int | None) -> None:
    """Remember the provider's answer to the current send (the last one wins when a send makes several calls)."""
    _answered.code = code


def take_status() -> int | None:
    """The status noted since the last take on this thread (None if none), and forget it."""
    code = getattr(_answered, "code", None)
    _answered.code = None
    return code


class RateLimit(BaseModel):
    """At most `count` sends per `per` seconds to one channel (a token bucket of size `count`)."""

    count: float
    per: float


class Channel(abc.ABC):
    """A configured channel: its name, its settings, and `send`. Constructed once per process by the registry."""

    type: ClassVar[str]
    # A send that waits on a remote service runs on the dispatcher's thread pool, so that a slow provider holds up
    # no other channel. One that does not (the log) runs on the dispatcher's own thread: handing it to a pool
    # thread only adds hand-offs and lock contention (measured: a third of the engine's CPU under load).
    waits_on_network: ClassVar[bool] = True
    # A channel that keeps one thread per notification group (the Slack app, Telegram): the dispatcher hands it
    # the group's open thread (Message.thread), stores the root its `send` returns (Posted), and after each reply
    # in the thread enqueues an `update` message, which the channel sends as an edit of the root.
    threads: ClassVar[bool] = False

    def __init__(self, name: str, settings: BaseModel, *, renderer: "Renderer", http: "requests.Session"):
        self.name = name
        self.settings = settings
        self.renderer = renderer
        self.http = http

    @abc.abstractmethod
    def send(self, message: Message) -> Posted | None:
        """Deliver `message` or raise DeliveryError. A threading channel returns Posted when it posted a new root
        message (message.thread was None and it is not a digest); every other send returns None."""

    @property
    def rate_limit(self) -> RateLimit | None:
        """The provider's limit for this channel; None when it has none."""
        return None

    @property
    def per_alert(self) -> bool:
        """True for channels that take one message per occurrence (PagerDuty's dedup_key), never grouped."""
        return False

    @property
    def repeat_digest(self):
        """The channel's RepeatDigest (channels/chat.py) when it folds many groups' repeats into one message."""
        return getattr(getattr(self, "settings", None), "repeat_digest", None)

    def accepts_level(self, level: str) -> bool:
        """Whether intents at `level` are created for this channel at all (SMS: L1 only by default)."""
        return True


def addresses(channel: str, message: Message, to: tuple[str, ...], field: str, what: str) -> tuple[str, ...]:
    """Where a message goes: the person it pages (a route's schedule or person target; `field` of the Recipient,
    e.g. "email"), else the channel's own `to`. Neither is a permanent failure, named."""
    if message.recipient is not None:
        address = getattr(message.recipient, field)
        if not address:  # engine/paging.py never sends such a message; a bug if it did
            raise DeliveryError(f"{message.recipient.name} has no {what}", retryable=False)
        return (address,)
    if not to:
        raise DeliveryError(f'channel "{channel}" has no `to:` and the message pages no person', retryable=False)
    return tuple(to)


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def check_response(response: "requests.Response", *, what: str, retryable_codes: Iterable[int] = (),
                   secrets: Iterable[str] = ()) -> None:
    """Raise DeliveryError unless the response is 2xx. 429 and 5xx are retryable (with Retry-After), as are
    the channel's `retryable_codes`; every other status is permanent. `what` names the call, never its URL; the
    body quoted has `secrets` masked."""
    status = response.status_code
    note_status(status)
    if 200 <= status < 300:
        return
    # Masked whole, then cut: cutting first would leave a secret straddling the cut all but its last characters.
    body = redact((response.text or "").strip().replace("\n", " "), secrets)[:BODY_QUOTED]
    reason = f"{what}: HTTP {status}" + (f": {body}" if body else "")
    retryable = status == 429 or status >= 500 or status in set(retryable_codes)
    raise DeliveryError(reason, retryable=retryable, code=status,
                        retry_after=retry_after_seconds(response.headers.get("Retry-After")) if retryable else None)


# --- HTTP, written once for every HTTP channel -------------------------------------------------------------


def http_timeout(timeout: dt.timedelta) -> tuple[float, float]:
    """(connect, read) seconds for requests from a channel's `timeout` setting: the read timeout is the setting,
    the connect timeout the same but at most 10 s (an endpoint that takes longer to accept a connection is down)."""
    read = timeout.total_seconds()
    return min(read, 10.0), read


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's words for a failed connection ("Connection refused", "Name or service not known"),
    found down the exception chain. Only `strerror` is used: requests' and urllib3's own messages carry the URL."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and isinstance(current.strerror, str) and current.strerror:
            return current.strerror
        todo.extend(e for e in (*current.args, getattr(current, "reason", None), current.__cause__,
                                current.__context__) if isinstance(e, BaseException))
    return None


def request_error(exc: "requests.RequestException", *, what: str) -> DeliveryError:
    """Map a requests exception to a DeliveryError whose reason names the call and the failure, never the URL
    (Slack and Teams webhook URLs are secrets, and requests puts the URL in its messages). Timeouts and
    connection failures are retryable; an unusable URL or request is not."""
    import requests

    cause = _os_reason(exc)
    detail = f" ({cause})" if cause else ""
    if isinstance(exc, requests.Timeout):
        phase = "connecting" if isinstance(exc, requests.ConnectTimeout) else "waiting for the response"
        return DeliveryError(f"{what}: timed out {phase}", retryable=True)
    if isinstance(exc, requests.exceptions.SSLError):
        # Retryable: an expired or replaced certificate is fixed on the server side while the retries run.
        return DeliveryError(f"{what}: TLS handshake failed{detail}", retryable=True)
    if isinstance(exc, requests.ConnectionError):
        return DeliveryError(f"{what}: connection failed{detail}", retryable=True)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)):
        return DeliveryError(f"{what}: the request cannot be made ({type(exc).__name__})", retryable=False)
    # ChunkedEncodingError, ContentDecodingError, TooManyRedirects and the rest: the exchange broke midway.
    return DeliveryError(f"{what}: request failed ({type(exc).__name__}){detail}", retryable=True)


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be credentials: the URL, its path and query, each long path segment (Slack's
    and Teams' webhook tokens are path segments), and any user:password."""
    parts = urllib.parse.urlsplit(url)
    found = [url, parts.path, parts.query, parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""]
    found += [segment for segment in parts.path.split("/") if len(segment) >= 16]
    return [f for f in dict.fromkeys(found) if len(f) > 1]


def post(http: "requests.Session", url: str, *, what: str, timeout: dt.timedelta,
         retryable_codes: Iterable[int] = (), secrets: Iterable[str] = (), **kwargs) -> "requests.Response":
    """POST with the channel's timeouts and no redirects (a webhook that redirects is misconfigured, and a
    redirect must not carry credentials elsewhere); raise DeliveryError unless the answer is 2xx. `secrets`
    (the URL itself is always one) are masked should the response body quoted in the reason echo them."""
    import requests

    secrets = list(secrets)
    auth = kwargs.get("auth")
    if isinstance(auth, tuple) and len(auth) == 2:  # basic auth: the password, and the header's form of it
        secrets += [str(auth[1]), f"{auth[0]}:{auth[1]}"]
    try:
        response = http.post(url, timeout=http_timeout(timeout), allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        raise request_error(exc, what=what) from None
    check_response(response, what=what, retryable_codes=retryable_codes, secrets=[*url_secrets(url), *secrets])
    return response
