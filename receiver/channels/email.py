"""The `email` channel: SMTP with STARTTLS (port 587) or implicit TLS (`ssl: true`, port 465).

One multipart/alternative message per notification: `email/subject.j2`, `email/body.txt.j2` and the
autoescaped `email/body.html`. SMTP 5xx replies are permanent, 4xx replies and connection trouble retryable.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from receiver.channels.base import Channel, DeliveryError, addresses, note_status
from receiver.channels.markup import plain
from receiver.channels.text import cut, one_line
from receiver.domain import Message
from receiver.fields import FieldError, FrozenModel, Integer, PositiveDuration, Secret
from receiver.logs import redact

log = logging.getLogger("receiver.channels.email")

SUBJECT_LIMIT = 200
REASON_LIMIT = 500


def _address(value: str) -> str:
    # Accepts "alerts@example.org" and "Alerts <alerts@example.org>".
    _, addr = email.utils.parseaddr(value)
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain or " " in addr:
        raise FieldError(f'"{value}" is not an e-mail address', fix="write e.g. oncall@example.org")
    return value


Address = Annotated[str, AfterValidator(_address)]


class EmailSettings(FrozenModel):
    # `from` is a Python keyword: the attribute is from_addr, the YAML key `from`.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    type: Literal["email"]
    smtp_host: Annotated[str, Field(min_length=1)]
    smtp_port: Annotated[Integer, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: Secret | None = None
    from_addr: Address = Field(alias="from")
    # Optional for a channel that only pages people (a route's `via:`): it then mails the person's address.
    to: Annotated[tuple[Address, ...], Field(min_length=1)] | None = None
    timeout: PositiveDuration = dt.timedelta(seconds=10)
    # PEM file of the CA(s) that signed the server's certificate, for a private CA; relative to receiver.yml.
    # When set, only these CAs are trusted; unset, the system's. Certificates are always verified.
    tls_ca: Path | None = None

    @field_validator("tls_ca")
    @classmethod
    def _ca_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        if not value.is_absolute() and base is not None:
            value = Path(base) / value
        if not value.is_file():
            raise FieldError(f"tls_ca {value} is not a file", fix="give the path of a PEM file of CA certificates")
        return value

    @model_validator(mode="after")
    def _tls_and_login(self) -> "EmailSettings":
        if self.ssl and self.starttls:
            if "starttls" in self.model_fields_set:
                raise FieldError("starttls and ssl are both true; they are mutually exclusive",
                                 fix="ssl: true for implicit TLS (port 465), or starttls: true for port 587")
            # `ssl: true` alone means implicit TLS: the starttls default and port 587 give way. The model is
            # frozen, and this is its own validation, so it may still set its fields.
            object.__setattr__(self, "starttls", False)
            if "smtp_port" not in self.model_fields_set:
                object.__setattr__(self, "smtp_port", 465)
        if (self.username is None) != (self.password is None):
            raise FieldError("username and password go together", fix="set both, or neither for an open relay")
        return self


def _smtp_error(exc: smtplib.SMTPException, what: str, secrets: list[str]) -> DeliveryError:
    """SMTP reply codes (RFC 5321 §4.2.1): 4xx transient, 5xx permanent. The server's words are quoted with the
    credentials masked (a 535 may quote the AUTH line) before they are cut."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        codes = [code for code, _ in refused.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in refused.items())
        return DeliveryError(redact(f"{what}: every recipient refused: {detail}", secrets)[:REASON_LIMIT],
                             retryable=all(400 <= code < 500 for code in codes), code=codes[0] if codes else None)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        # A code outside 4xx/5xx (smtplib's -1 for a lost connection) is trouble on the way: retry.
        return DeliveryError(redact(f"{what}: {code} {_text(exc.smtp_error)}", secrets)[:REASON_LIMIT],
                             retryable=not 500 <= code < 600, code=code if code > 0 else None)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{what}: the server closed the connection", retryable=True)
    # SMTPNotSupportedError (no STARTTLS or AUTH offered) and "no suitable authentication method": the server
    # does not do what the settings ask; a retry will not change that, and falling back to cleartext must not.
    return DeliveryError(redact(f"{what}: {exc}", secrets)[:REASON_LIMIT], retryable=False)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class EmailChannel(Channel):
    type = "email"
    settings: EmailSettings

    def build(self, message: Message) -> EmailMessage:
        s = self.settings
        # Control characters out of every part (markup.plain): the HTML part is autoescaped by its template.
        subject = cut(one_line(plain(self.renderer.render_message("email/subject.j2", message))), SUBJECT_LIMIT)
        mail = EmailMessage()
        mail["Subject"] = subject or "alert-receiver notification"
        mail["From"] = s.from_addr
        mail["To"] = ", ".join(self.recipients(message))
        mail["Date"] = email.utils.format_datetime(message.created_at)
        # Stable across retries of one notification (a client may fold the duplicate that at-least-once
        # delivery can cause), and unique across databases thanks to the creation time.
        domain = email.utils.parseaddr(s.from_addr)[1].rpartition("@")[2]
        mail["Message-ID"] = f"<alert-receiver.{message.notification_id}.{int(message.created_at.timestamp())}@{domain}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the pager
        mail.set_content(plain(self.renderer.render_message("email/body.txt.j2", message)))
        mail.add_alternative(plain(self.renderer.render_message("email/body.html", message)), subtype="html")
        return mail

    def recipients(self, message: Message) -> tuple[str, ...]:
        """The person paged (a route's schedule or person target), else the channel's `to`."""
        return addresses(self.name, message, self.settings.to, "email", "e-mail address")

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        timeout = s.timeout.total_seconds()
        context = ssl.create_default_context(cafile=str(s.tls_ca) if s.tls_ca else None)
        if s.ssl:
            return smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=timeout, context=context)
        client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        try:
            if s.starttls:
                client.starttls(context=context)
        except BaseException:
            client.close()
            raise
        return client

    def secrets(self) -> list[str]:
        """What an SMTP reply must not show: the password, and the login lines built from it (AUTH PLAIN's
        \\0user\\0password, user:password); redact also finds their base64 forms."""
        s = self.settings
        if s.password is None:
            return []
        password = s.password.reveal()
        return [password, f"\0{s.username}\0{password}", f"{s.username}\0{s.username}\0{password}",
                f"{s.username}:{password}"]

    def send(self, message: Message) -> None:
        s = self.settings
        what = f"smtp {s.smtp_host}:{s.smtp_port}"
        mail = self.build(message)
        sender = email.utils.parseaddr(s.from_addr)[1]
        recipients = [email.utils.parseaddr(a)[1] for a in self.recipients(message)]
        try:
            client = self._connect()
            try:
                if s.username is not None and s.password is not None:
                    client.login(s.username, s.password.reveal())
                refused = client.send_message(mail, sender, recipients)
            finally:
                _close(client)
        except smtplib.SMTPException as exc:  # before OSError: SMTPException is one
            raise _smtp_error(exc, what, self.secrets()) from None
        except ssl.SSLCertVerificationError as exc:
            # Retryable: a certificate is fixed on the server side while the retries run.
            raise DeliveryError(f"{what}: certificate verification failed ({exc.verify_message})",
                                retryable=True) from None
        except (OSError, EOFError) as exc:  # refused, unreachable, timed out, TLS failures
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise DeliveryError(redact(f"{what}: connection failed ({reason})", self.secrets()),
                                retryable=True) from None
        note_status(250)  # smtplib raises unless the server answered the message's data with 250
        if refused:
            # Some recipients got it: retrying would page them again, so this counts as sent, loudly.
            log.warning("some e-mail recipients were refused", extra={
                "channel": self.name,
                "refused": {r: redact(f"{c} {_text(m)}", self.secrets()) for r, (c, m) in refused.items()}})


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
