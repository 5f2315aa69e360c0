"""The e-mail channel against a real SMTP server (aiosmtpd on loopback): the parsed message, login, STARTTLS
and implicit TLS with a certificate made here, and SMTP replies classified: 5xx permanent, 4xx retryable."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import logging
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from receiver.channels.base import DeliveryError

from ..support.messages import make_alert, make_message

PASSWORD = "leak-smtp-password"


class Collector:
    """An aiosmtpd handler that keeps every accepted message, or answers RCPT/DATA with a queued reply."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alert-receiver test SMTP")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture
def smtp_server(request):
    """start(**controller_kwargs) → (collector, port); every server is stopped after the test."""
    started = []

    def start(**kwargs):
        collector = Collector()
        port = free_port()
        controller = Controller(collector, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return collector, port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def email_channel(make_channel):
    def make(port: int, **overrides):
        settings = {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False,
                    "from": "Alerts <alerts@example.org>", "to": ["oncall@example.org", "lead@example.org"],
                    "timeout": "5s", **overrides}
        return make_channel("email", **{k: v for k, v in settings.items() if v is not None})  # None: unset

    return make


def _parts(mail: email.message.EmailMessage) -> tuple[str, str]:
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def test_a_message_arrives_as_text_and_html(smtp_server, email_channel):
    collector, port = smtp_server()
    message = make_message(3)
    email_channel(port).send(message)
    [(mail_from, rcpt_tos, mail)] = collector.messages
    assert mail_from == "alerts@example.org"
    assert rcpt_tos == ["oncall@example.org", "lead@example.org"]
    assert mail["Subject"] == "[L1 FIRING] HighCPUUsage (3 alerts)"
    assert mail["From"] == "Alerts <alerts@example.org>"
    assert mail["To"] == "oncall@example.org, lead@example.org"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] == f"<alert-receiver.7.{int(message.created_at.timestamp())}@example.org>"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = _parts(mail)
    for alert in message.alerts:
        assert alert.annotations["summary"] in text and alert.annotations["summary"] in html
        assert alert.url in text and alert.ack_url in text and f'href="{alert.url}"' in html
    assert text.startswith("[L1 FIRING] HighCPUUsage (3 alerts)")


def test_label_values_are_escaped_in_html(smtp_server, email_channel):
    collector, port = smtp_server()
    alert = make_alert(labels={"alertname": "XSS", "severity": "warning", "mountpoint": "<script>alert(1)</script>"},
                       annotations={"summary": "<b>bold</b> & more"})
    email_channel(port).send(make_message((alert,), level="L2"))
    text, html = _parts(collector.messages[0][2])
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert "<script>alert(1)</script>" in text  # plain text is plain


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login(smtp_server, email_channel, caplog):
    caplog.set_level(logging.DEBUG)
    collector, port = smtp_server(authenticator=_authenticator, auth_require_tls=False, auth_required=True)
    email_channel(port, username="alerts", password=PASSWORD).send(make_message())
    assert len(collector.messages) == 1
    with pytest.raises(DeliveryError) as info:
        email_channel(port, username="alerts", password="wrong-password").send(make_message())
    assert info.value.retryable is False and "535" in info.value.reason
    ours = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records if r.name.startswith("receiver"))
    assert PASSWORD not in ours and PASSWORD not in info.value.reason


def test_starttls_with_a_private_ca(smtp_server, email_channel, certificate):
    collector, port = smtp_server(tls_context=_server_context(certificate), require_starttls=True,
                                  authenticator=_authenticator, auth_required=True)
    # auth_require_tls stays on: the login only succeeds after STARTTLS.
    email_channel(port, starttls=True, tls_ca=str(certificate[0]), username="alerts", password=PASSWORD
                  ).send(make_message())
    assert len(collector.messages) == 1


def test_starttls_refuses_an_unknown_certificate(smtp_server, email_channel, certificate):
    _, port = smtp_server(tls_context=_server_context(certificate), require_starttls=True)
    with pytest.raises(DeliveryError) as info:
        email_channel(port, starttls=True).send(make_message())  # the system CAs do not know it
    assert info.value.retryable is True and "certificate verification failed" in info.value.reason


def test_starttls_not_offered_is_permanent_and_nothing_goes_out_in_clear(smtp_server, email_channel):
    collector, port = smtp_server()
    with pytest.raises(DeliveryError) as info:
        email_channel(port, starttls=True).send(make_message())
    assert info.value.retryable is False and "STARTTLS" in info.value.reason
    assert collector.messages == []


def test_implicit_tls(smtp_server, email_channel, certificate):
    collector, port = smtp_server(ssl_context=_server_context(certificate))
    email_channel(port, ssl=True, starttls=None, tls_ca=str(certificate[0])).send(make_message())
    assert len(collector.messages) == 1


REPLIES = [
    ("rcpt", "550 5.1.1 No such user", False),
    ("rcpt", "451 4.3.0 Try again later", True),
    ("data", "554 5.7.1 Message rejected as spam", False),
    ("data", "452 4.3.1 Insufficient system storage", True),
]


@pytest.mark.parametrize("stage,reply,retryable", REPLIES, ids=[f"{s}-{r[:3]}" for s, r, _ in REPLIES])
def test_smtp_replies_are_classified(smtp_server, email_channel, stage, reply, retryable):
    collector, port = smtp_server()
    setattr(collector, f"{stage}_reply", reply)
    with pytest.raises(DeliveryError) as info:
        email_channel(port).send(make_message())
    assert info.value.retryable is retryable
    assert reply[:3] in info.value.reason


def test_a_refused_connection_is_retryable(email_channel):
    with pytest.raises(DeliveryError) as info:
        email_channel(free_port()).send(make_message())
    assert info.value.retryable is True and "Connection refused" in info.value.reason


def test_tls_ca_must_be_a_file(make_channel, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="is not a file"):
        make_channel("email", smtp_host="h", **{"from": "a@example.org"}, to=["b@example.org"],
                     tls_ca=str(tmp_path / "missing.pem"))
