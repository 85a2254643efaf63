"""Alerts delivered through real servers on loopback: an aiosmtpd SMTP server (plain, and with
STARTTLS on a self-signed certificate made here, and a login) and a scripted HTTP receiver
(failures and recoveries, a slow answer, a redirect). Every failure comes back as
"failed: <reason>" without raising, and no secret reaches the log or a returned reason."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from loopback_receiver import Receiver, Reply

from resources.notifications import (
    ALERT_KEY_HEADER,
    SHANGHAI,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Alert,
    NotificationResource,
    retry_delay,
    verify_signature,
)

PASSWORD = "smtp-pa55word-do-not-show"
SECRET = "webhook-s3cret-do-not-show"
USER = "alerts@quant.example"
FAST = {"webhook_backoff": 0.01, "timeout": 2.0}  # short waits: the file runs in seconds


def _alert(severity: str = "error") -> Alert:
    return Alert(
        key="check_failed:orders:risk_check:2024-06-03",
        kind="check_failed",
        severity=severity,
        title="Risk check failed on orders",
        text="3 orders exceed the position limit.\nThe portfolio was not sent.",
        metadata={
            "symbol": "600519.SH",
            "name": "贵州茅台",
            "failed_rows": 3,
            "limits": {"max": 0.1},
        },
        occurred_at=datetime(2024, 6, 3, 14, 55, tzinfo=SHANGHAI),
    )


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly, whatever proxy the machine is set up with."""
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def _free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# SMTP on loopback


class _Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.received.append(
            (envelope, message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 Message accepted for delivery"


class _LoopbackController(Controller):
    """aiosmtpd's controller on a port the system picks (port 0): the real port is read from the
    listening socket before the controller's start-up probe connects to it."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _check_login(
    server: object, session: object, envelope: object, mechanism: str, auth_data: object
) -> AuthResult:
    """aiosmtpd's authenticator: USER with PASSWORD, nobody else."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@contextmanager
def _smtp_server(**smtp_options: object) -> Iterator[tuple[int, _Inbox]]:
    """A running SMTP server on 127.0.0.1: its port and its inbox."""
    inbox = _Inbox()
    controller = _LoopbackController(
        inbox, hostname="127.0.0.1", port=0, server_hostname="localhost", **smtp_options
    )
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@dataclass(frozen=True)
class _Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> _Cert:
    """A certificate for 127.0.0.1 and localhost, signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quant test SMTP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    paths = _Cert(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@contextmanager
def _starttls_server(cert: _Cert) -> Iterator[tuple[int, _Inbox]]:
    """An SMTP server that takes mail only after STARTTLS and a login (USER / PASSWORD)."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert.cert, cert.key)
    with _smtp_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=_check_login,
        auth_require_tls=True,
        auth_required=True,
    ) as server:
        yield server


def _mailer(port: int, **config: object) -> NotificationResource:
    return NotificationResource(
        smtp_host="127.0.0.1",
        smtp_port=port,
        mail_from="quant@quant.example",
        mail_to="ops@quant.example, risk@quant.example",
        timeout=5.0,
        **config,
    )


def test_email_arrives_with_subject_body_metadata_and_key_header() -> None:
    with _smtp_server() as (port, inbox):
        result = _mailer(port, smtp_starttls=False).send(_alert())

    assert result == {"log": "sent", "email": "sent", "webhook": "not configured"}
    [(envelope, msg)] = inbox.received
    assert envelope.rcpt_tos == ["ops@quant.example", "risk@quant.example"]
    assert msg["Subject"] == "[quant][error] Risk check failed on orders"
    assert msg["From"] == "quant@quant.example"
    assert msg[ALERT_KEY_HEADER] == "check_failed:orders:risk_check:2024-06-03"
    assert msg["Message-ID"].endswith("@quant.example>")
    body = msg.get_content().splitlines()
    for line in [
        "3 orders exceed the position limit.",
        "The portfolio was not sent.",
        "symbol: 600519.SH",
        "name: 贵州茅台",
        "failed_rows: 3",
        'limits: {"max": 0.1}',
        "alert: check_failed:orders:risk_check:2024-06-03",
        "occurred at: 2024-06-03T14:55:00+08:00",
    ]:
        assert line in body


def test_email_over_starttls_with_a_login(
    self_signed: _Cert, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with _starttls_server(self_signed) as (port, inbox):
        # The client trusts the test's certificate (the system's trust store does not hold it).
        trust = ssl.create_default_context(cafile=str(self_signed.cert))
        mailer = _mailer(port, smtp_user=USER, smtp_password=PASSWORD)
        mailer._ssl_context = trust
        result = mailer.send(_alert("warning"))
        anonymous = _mailer(port)
        anonymous._ssl_context = trust
        refused = anonymous.send(_alert())["email"]

    assert result["email"] == "sent", result
    assert refused.startswith("failed: SMTPSenderRefused: (530"), refused  # so "sent" logged in
    [(_, msg)] = inbox.received
    assert msg["Subject"] == "[quant][warning] Risk check failed on orders"
    assert PASSWORD not in caplog.text and PASSWORD not in repr(mailer)


def test_starttls_checks_the_server_certificate(self_signed: _Cert) -> None:
    with _starttls_server(self_signed) as (port, inbox):
        result = _mailer(port, smtp_user=USER, smtp_password=PASSWORD).send(_alert())

    assert result["email"].startswith("failed: SSLCertVerificationError"), result
    assert "self-signed certificate" in result["email"]
    assert inbox.received == []


def test_wrong_password_fails_without_showing_it(
    self_signed: _Cert, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = PASSWORD + "-wrong"
    with _starttls_server(self_signed) as (port, inbox):
        mailer = _mailer(port, smtp_user=USER, smtp_password=wrong)
        mailer._ssl_context = ssl.create_default_context(cafile=str(self_signed.cert))
        result = mailer.send(_alert())

    assert result["email"].startswith("failed: SMTPAuthenticationError: (535"), result
    assert inbox.received == []
    assert wrong not in caplog.text and wrong not in str(result)
    assert "email failed: SMTPAuthenticationError" in caplog.text


def test_starttls_against_a_server_without_it_fails_without_raising() -> None:
    with _smtp_server() as (port, inbox):
        result = _mailer(port).send(_alert())  # smtp_starttls defaults to True

    assert result["email"] == (
        "failed: SMTPNotSupportedError: STARTTLS extension not supported by server."
    )
    assert inbox.received == []


def test_unreachable_smtp_server_fails_without_raising() -> None:
    result = _mailer(_free_port()).send(_alert())
    assert result["email"].startswith("failed: ConnectionRefusedError"), result


# ---------------------------------------------------------------------------------------------
# Webhook on loopback


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """Starts receivers with the given replies; all are closed after the test."""
    started: list[Receiver] = []

    def start(*replies: Reply) -> Receiver:
        started.append(Receiver(list(replies)))
        return started[-1]

    yield start
    for r in started:
        r.close()


def _hook(url: str, **config: object) -> NotificationResource:
    return NotificationResource(webhook_url=url, webhook_secret=SECRET, **{**FAST, **config})


def test_webhook_posts_signed_json(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(200))
    before = int(time.time())
    result = _hook(r.url).send(_alert())

    assert result == {"log": "sent", "email": "not configured", "webhook": "sent"}
    [seen] = r.seen
    assert json.loads(seen.body) == {
        "key": "check_failed:orders:risk_check:2024-06-03",
        "kind": "check_failed",
        "severity": "error",
        "title": "Risk check failed on orders",
        "text": "3 orders exceed the position limit.\nThe portfolio was not sent.",
        "metadata": {
            "symbol": "600519.SH",
            "name": "贵州茅台",
            "failed_rows": 3,
            "limits": {"max": 0.1},
        },
        "occurred_at": "2024-06-03T14:55:00+08:00",
    }
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert before <= int(seen.headers[TIMESTAMP_HEADER.lower()]) <= time.time()
    signature = seen.headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=") and SECRET not in signature
    assert verify_signature(seen.body, SECRET, signature)
    tampered = seen.body.replace(b'"failed_rows":3', b'"failed_rows":0')
    assert tampered != seen.body and not verify_signature(tampered, SECRET, signature)
    assert not verify_signature(seen.body, "another secret", signature)
    assert not verify_signature(seen.body, SECRET, signature.removeprefix("sha256="))


def test_webhook_without_a_secret_is_not_signed(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(204))
    result = NotificationResource(webhook_url=r.url, **FAST).send(_alert())
    assert result["webhook"] == "sent"
    assert SIGNATURE_HEADER.lower() not in r.seen[0].headers


def test_webhook_retries_until_the_receiver_recovers(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(503), Reply(503), Reply(200))
    assert _hook(r.url).send(_alert())["webhook"] == "sent"
    assert len(r.seen) == 3
    assert len({seen.body for seen in r.seen}) == 1  # the same alert each time
    for seen in r.seen:
        assert verify_signature(seen.body, SECRET, seen.headers[SIGNATURE_HEADER.lower()])


def test_webhook_gives_up_after_the_retries(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(503))
    result = _hook(r.url, webhook_retries=2).send(_alert())
    assert result["webhook"] == "failed: HTTP 503 (3 attempts)"
    assert len(r.seen) == 3


def test_webhook_honours_retry_after_on_429(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(429, headers={"Retry-After": "0.3"}), Reply(200))
    started = time.monotonic()
    assert _hook(r.url).send(_alert())["webhook"] == "sent"
    assert time.monotonic() - started >= 0.3  # waited as asked, not the 0.01 s backoff
    assert len(r.seen) == 2


def test_webhook_does_not_retry_a_client_error(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(400))
    assert _hook(r.url).send(_alert())["webhook"] == "failed: HTTP 400"
    assert len(r.seen) == 1


def test_webhook_does_not_follow_a_redirect(receiver: Callable[..., Receiver]) -> None:
    # urllib would follow it as a GET without the body.
    target = receiver(Reply(200))
    r = receiver(Reply(302, headers={"Location": target.url}))
    assert _hook(r.url).send(_alert())["webhook"] == "failed: HTTP 302"
    assert len(r.seen) == 1 and target.seen == []


def test_webhook_times_out_retries_then_fails(receiver: Callable[..., Receiver]) -> None:
    r = receiver(Reply(200, delay=2.0))
    started = time.monotonic()
    result = _hook(r.url, timeout=0.2, webhook_retries=1).send(_alert())
    assert result["webhook"] == "failed: timed out (2 attempts)"
    assert len(r.seen) == 2
    assert time.monotonic() - started < 1.5  # two 0.2 s timeouts, not the receiver's 2 s


def test_webhook_to_a_closed_port_fails(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_free_port()}/alerts"
    result = _hook(url, webhook_retries=1).send(_alert())
    assert result["webhook"] == "failed: connection refused (2 attempts)"
    assert "webhook failed: connection refused" in caplog.text


def test_webhook_url_must_be_http() -> None:
    result = _hook("file:///etc/passwd").send(_alert())
    assert result["webhook"] == "failed: webhook_url must be an http(s) URL"


def test_retry_delay_doubles_and_honours_a_numeric_retry_after() -> None:
    assert [retry_delay(a, 0.5, None) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert retry_delay(0, 0.5, "3") == 3.0
    assert retry_delay(0, 0.5, "120") == 30.0  # capped
    assert retry_delay(2, 1.0, "1") == 4.0  # never shorter than the backoff
    assert retry_delay(0, 1.0, "Wed, 21 Oct 2015 07:28:00 GMT") == 1.0  # a date is ignored
    assert retry_delay(0, 1.0, "-5") == 1.0


# ---------------------------------------------------------------------------------------------
# Log channel, configuration, secrets


def test_unconfigured_channels_and_the_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="resources.notifications")
    resource = NotificationResource()
    assert resource.send(_alert("warning")) == {
        "log": "sent",
        "email": "not configured",
        "webhook": "not configured",
    }
    assert resource.send(_alert("error"))["log"] == "sent"
    # Half an email configuration is no configuration.
    assert NotificationResource(smtp_host="127.0.0.1").send(_alert())["email"] == "not configured"
    assert NotificationResource(mail_to=" , ").send(_alert())["email"] == "not configured"

    alert_lines = [r for r in caplog.records if r.getMessage().startswith("alert ")]
    assert [r.levelno for r in alert_lines] == [
        logging.WARNING,
        logging.ERROR,
        logging.ERROR,
        logging.ERROR,
    ]
    assert alert_lines[0].getMessage() == (
        "alert check_failed:orders:risk_check:2024-06-03: Risk check failed on orders"
    )


def test_send_logs_to_the_logger_it_is_given(caplog: pytest.LogCaptureFixture) -> None:
    NotificationResource().send(_alert(), logger=logging.getLogger("a.sensor"))
    assert [r.name for r in caplog.records] == ["a.sensor"]


def test_secrets_never_reach_the_log_or_the_results(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = receiver(Reply(500))
    with _smtp_server() as (port, _inbox):
        resource = NotificationResource(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_user=USER,
            smtp_password=PASSWORD,
            mail_to="ops@quant.example",
            webhook_url=r.url,
            webhook_secret=SECRET,
            webhook_retries=1,
            **FAST,
        )
        # A title that happens to contain the secret is masked too.
        alert = Alert(key="k", kind="run_failed", severity="error", title=f"x {SECRET}", text="t")
        result = resource.send(alert)

    assert result["email"].startswith("failed: SMTPNotSupportedError")
    assert result["webhook"] == "failed: HTTP 500 (2 attempts)"
    shown = caplog.text + json.dumps(result) + repr(resource) + str(resource)
    assert PASSWORD not in shown and SECRET not in shown
    assert "alert k: x ***" in caplog.text


def test_alert_checks_severity_and_time_zone() -> None:
    alert = Alert(key="k", kind="stale_data", severity="warning", title="t", text="x")
    assert alert.occurred_at.tzinfo == SHANGHAI and alert.metadata == {}
    with pytest.raises(ValueError, match="severity"):
        Alert(key="k", kind="stale_data", severity="info", title="t", text="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time-zone aware"):
        Alert(
            key="k",
            kind="stale_data",
            severity="warning",
            title="t",
            text="x",
            occurred_at=datetime(2024, 6, 3),
        )
