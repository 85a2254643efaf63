"""Alerts of the platform (failed checks and runs, stale data, model drift, rejected portfolios)
and the resource that delivers them: a log line always, an email and a signed webhook when
configured.

An alert channel must never fail the run or sensor that raises the alert, so
`NotificationResource.send` catches every failure and reports it per channel instead
("sent", "failed: <reason>", "not configured"). Secrets (the SMTP password, the webhook secret)
are handed to the SMTP server and HMAC only: never to a log line, a returned reason or the
resource's repr.

The webhook body is JSON, signed as `X-Quant-Signature: sha256=<hex HMAC-SHA256 of the exact
body bytes>`; a receiver checks it with `verify_signature`. A POST is retried on connection
errors, timeouts, 429 and 5xx (exponential backoff, honouring a numeric Retry-After), so a
receiver may see an alert twice when an answer was lost: it de-duplicates on the alert's `key`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Literal
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the exchanges' time zone, as in quant_assets.calendar
Severity = Literal["warning", "error"]
SEVERITIES: tuple[str, ...] = ("warning", "error")

SENT = "sent"
NOT_CONFIGURED = "not configured"
FAILED = "failed"

SIGNATURE_HEADER = "X-Quant-Signature"
TIMESTAMP_HEADER = "X-Quant-Timestamp"
ALERT_KEY_HEADER = "X-Quant-Alert-Key"
RETRY_AFTER_CAP = 30.0  # seconds: a receiver asking for longer would stall the sender too long
_REASON_CHARS = 300  # a returned reason is one short line

_LOG = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(SHANGHAI)


@dataclass(frozen=True)
class Alert:
    """One event worth telling a person about.

    `key` identifies the event, not the message ("check_failed:orders:risk_check:2024-06-03"):
    the sensors raising alerts and the receivers use it to send and show an event once.
    `kind` is its category ("check_failed", "run_failed", "stale_data", "model_drift",
    "portfolio_rejected"); `metadata` holds JSON-able details (shown as "name: value" lines).
    """

    key: str
    kind: str
    severity: Severity
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be time-zone aware")

    def payload(self) -> dict[str, Any]:
        """The alert as the webhook's JSON object (`occurred_at` in ISO 8601 with its offset)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "metadata": dict(self.metadata),
            "occurred_at": self.occurred_at.isoformat(),
        }


# ---------------------------------------------------------------------------------------------
# Email


def parse_addresses(value: str | None) -> list[str]:
    """The addresses of a comma-separated list, stripped, empty entries dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _render_value(value: Any) -> str:
    """A metadata value on one line: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def render_body(alert: Alert) -> str:
    """The plain-text email body: the alert's text, its metadata as "name: value" lines, then
    the key, kind and time (so a reader can find the event again)."""
    lines = [alert.text.rstrip(), ""]
    if alert.metadata:
        lines += [f"{name}: {_render_value(value)}" for name, value in alert.metadata.items()]
        lines.append("")
    lines += [
        f"alert: {alert.key}",
        f"kind: {alert.kind}",
        f"occurred at: {alert.occurred_at.isoformat()}",
    ]
    return "\n".join(lines) + "\n"


def subject(alert: Alert) -> str:
    """The subject line, "[quant][severity] title" (line breaks of the title removed: a header
    may not hold them)."""
    return f"[quant][{alert.severity}] {' '.join(alert.title.split())}"


def build_email(alert: Alert, mail_from: str, mail_to: list[str]) -> EmailMessage:
    """The alert as a plain-text email, with a Message-ID and the alert's key as a header
    (mail filters and receivers can thread or de-duplicate on it)."""
    msg = EmailMessage()
    msg["Subject"] = subject(alert)
    msg["From"] = mail_from
    msg["To"] = ", ".join(mail_to)
    msg["Date"] = format_datetime(alert.occurred_at)
    domain = mail_from.rpartition("@")[2].strip("<> ") or "localhost"
    msg["Message-ID"] = make_msgid(idstring="quant-alert", domain=domain)
    msg[ALERT_KEY_HEADER] = alert.key
    msg.set_content(render_body(alert))
    return msg


def send_email(
    msg: EmailMessage,
    *,
    host: str,
    port: int,
    starttls: bool,
    user: str | None,
    password: str | None,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Send `msg` through an SMTP server: STARTTLS first when asked (certificate and host name
    checked by `ssl_context`, the system's trust store by default), then a login when both user
    and password are given. Raises on failure; returns the recipients the server refused
    while accepting the others (empty when all were accepted)."""
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        if starttls:
            smtp.starttls(context=ssl_context or ssl.create_default_context())
        if user and password:
            smtp.login(user, password)
        return smtp.send_message(msg)


# ---------------------------------------------------------------------------------------------
# Webhook


def webhook_body(alert: Alert) -> bytes:
    """The exact bytes POSTed (and signed): compact UTF-8 JSON with sorted keys."""
    text = json.dumps(
        alert.payload(), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )
    return text.encode("utf-8")


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: "sha256=" and the hex HMAC-SHA256 of `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    """For receivers: whether `header` (the X-Quant-Signature value) signs exactly `body` with
    `secret`. Compared in constant time, so the comparison leaks nothing about the signature."""
    return hmac.compare_digest(sign(body, secret).encode("ascii"), header.encode("utf-8"))


class WebhookError(Exception):
    """A webhook delivery that failed for good; the message is the short reason."""


def retry_delay(attempt: int, backoff: float, retry_after: str | None) -> float:
    """Seconds to wait after the failed attempt number `attempt` (0 for the first):
    `backoff * 2**attempt`, or longer when the receiver's numeric Retry-After asks for it (at
    most `RETRY_AFTER_CAP`). An HTTP-date Retry-After is ignored."""
    delay = backoff * 2**attempt
    try:
        asked = float(retry_after) if retry_after is not None else 0.0
    except ValueError:
        asked = 0.0
    return max(delay, min(max(asked, 0.0), RETRY_AFTER_CAP))


def _retryable(status: int) -> bool:
    """Statuses worth another try: the receiver is overloaded or failing, not refusing us."""
    return status == 429 or status >= 500


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answers 3xx as they are: urllib would turn a redirected POST into a GET without a body,
    which a receiver would see as an empty alert."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _post_once(request: urllib.request.Request, timeout: float) -> tuple[int, str | None]:
    """POST once: the HTTP status and the Retry-After header. Network errors raise. (The opener
    is built per call so that it reads the proxy settings of the environment as they are now.)"""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return response.status, None
    except HTTPError as error:  # a status urllib does not count as success (>= 300)
        with error:
            return error.code, error.headers.get("Retry-After")


def _network_problem(error: Exception) -> str:
    """A short reason for a failed connection, without the URL."""
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return str(reason)


def post_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    retries: int,
    backoff: float,
    timeout: float,
) -> int:
    """POST `body` to `url` until a 2xx answer, with up to `retries` further attempts after
    connection errors, timeouts, 429 and 5xx (see `retry_delay`); other statuses are final.
    Returns the number of attempts made; raises `WebhookError` with a short reason."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise WebhookError("webhook_url must be an http(s) URL")
    attempts = max(retries, 0) + 1
    problem = ""
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        retry_after = None
        try:
            status, retry_after = _post_once(request, timeout)
        except (OSError, http.client.HTTPException) as error:
            problem = _network_problem(error)
        else:
            if 200 <= status < 300:
                return attempt + 1
            problem = f"HTTP {status}"
            if not _retryable(status):
                raise WebhookError(problem)
        if attempt + 1 < attempts:
            time.sleep(retry_delay(attempt, backoff, retry_after))
    raise WebhookError(f"{problem} ({attempts} attempts)")


# ---------------------------------------------------------------------------------------------
# The resource


class NotificationResource(ConfigurableResource):
    """Delivers alerts: to the log always, by email when `smtp_host` and `mail_to` are set, to a
    webhook when `webhook_url` is set. Unset by default (log only). `send` never raises."""

    smtp_host: str | None = Field(default=None, description="SMTP server; unset: no email")
    smtp_port: int = Field(default=587, description="SMTP port (587: submission + STARTTLS)")
    smtp_starttls: bool = Field(
        default=True,
        description="upgrade the connection with STARTTLS (certificate checked); keep it on "
        "whenever a password is sent",
    )
    smtp_user: str | None = Field(default=None, description="SMTP login user")
    smtp_password: str | None = Field(
        default=None, repr=False, description="SMTP login password (from the environment)"
    )
    mail_from: str | None = Field(
        default=None, description="sender address; smtp_user, then quant-alerts@localhost if unset"
    )
    mail_to: str | None = Field(default=None, description="recipients, comma-separated")
    webhook_url: str | None = Field(default=None, description="http(s) URL alerts are POSTed to")
    webhook_secret: str | None = Field(
        default=None, repr=False, description="HMAC-SHA256 key of X-Quant-Signature"
    )
    webhook_retries: int = Field(default=3, description="further attempts after a failed POST")
    webhook_backoff: float = Field(default=1.0, description="seconds before the first retry")
    timeout: float = Field(default=10.0, description="seconds per SMTP or HTTP operation")

    # Trust for STARTTLS other than the system's (a private CA, a test's self-signed cert).
    _ssl_context: ssl.SSLContext | None = PrivateAttr(default=None)

    def send(self, alert: Alert, logger: logging.Logger | None = None) -> dict[str, str]:
        """Deliver `alert` to every channel; per channel "sent", "failed: <reason>" or "not
        configured". Never raises: a failing channel is logged and reported, the caller goes
        on. `logger` defaults to this module's (a sensor may pass `context.log`)."""
        log = logger or _LOG
        level = logging.ERROR if alert.severity == "error" else logging.WARNING
        log.log(level, self._redact(f"alert {alert.key}: {alert.title}"))
        results = {
            "log": SENT,
            "email": self._deliver_email(alert, log),
            "webhook": self._deliver_webhook(alert),
        }
        for channel, outcome in results.items():
            if outcome.startswith(FAILED):
                log.warning(self._redact(f"alert {alert.key}: {channel} {outcome}"))
        return results

    def _deliver_email(self, alert: Alert, log: logging.Logger) -> str:
        """The email channel's outcome (recipients refused while others accepted are logged:
        the alert did go out)."""
        recipients = parse_addresses(self.mail_to)
        if not (self.smtp_host and recipients):
            return NOT_CONFIGURED
        try:
            msg = build_email(
                alert, self.mail_from or self.smtp_user or "quant-alerts@localhost", recipients
            )
            refused = send_email(
                msg,
                host=self.smtp_host,
                port=self.smtp_port,
                starttls=self.smtp_starttls,
                user=self.smtp_user,
                password=self.smtp_password,
                timeout=self.timeout,
                ssl_context=self._ssl_context,
            )
        except Exception as error:  # any failure of a channel is reported, never raised
            return self._failed(error)
        if refused:
            log.warning("alert %s: email refused for %s", alert.key, ", ".join(sorted(refused)))
        return SENT

    def _deliver_webhook(self, alert: Alert) -> str:
        """The webhook channel's outcome."""
        if not self.webhook_url:
            return NOT_CONFIGURED
        try:
            body = webhook_body(alert)
            post_webhook(
                self.webhook_url,
                body,
                self._webhook_headers(body),
                retries=self.webhook_retries,
                backoff=self.webhook_backoff,
                timeout=self.timeout,
            )
        except Exception as error:  # any failure of a channel is reported, never raised
            return self._failed(error)
        return SENT

    def _webhook_headers(self, body: bytes) -> dict[str, str]:
        """Content type, send time (Unix seconds) and, with a secret, the body's signature."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "quant-alerts/1",
            TIMESTAMP_HEADER: str(int(time.time())),
        }
        if self.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(body, self.webhook_secret)
        return headers

    def _failed(self, error: Exception) -> str:
        """The outcome of a failed channel: "failed: <reason>" on one short line, secrets masked."""
        reason = (
            str(error) if isinstance(error, WebhookError) else f"{type(error).__name__}: {error}"
        )
        reason = " ".join(self._redact(reason).split())[:_REASON_CHARS]
        return f"{FAILED}: {reason}"

    def _redact(self, text: str) -> str:
        """`text` with the secrets masked (an exception or a server may echo them back)."""
        for secret in (self.smtp_password, self.webhook_secret):
            if secret:
                text = text.replace(secret, "***")
        return text
