"""Transports for the external channels: email over SMTP (aiosmtplib), webhook and SMS
gateway over HTTP (httpx).

A send either returns (delivered), or raises :class:`DeliveryError` saying whether trying
again could help (connection trouble, 4xx SMTP replies, HTTP 5xx/429) or not (5xx SMTP
replies, refused recipients, other HTTP 4xx). Every message carries a stable id
(``Message-ID`` / ``Idempotency-Key``) so a receiver can drop the rare duplicate left by a
replica that crashed between sending and recording.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from services.notify.domain.notice import Channel
from services.notify.settings import NotifySettings

RETRYABLE_HTTP = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A failed send; ``permanent`` means retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """One notice on its way through one channel."""

    delivery_id: str
    notice_id: str
    channel: Channel
    target: str
    kind: str
    doc_number: str
    title: str
    heading: str
    issuer_name: str
    recipient_unit: str
    recipient_name: str
    ack_deadline: str
    ack_deadline_cn: str
    deadline: str | None
    text: str

    @property
    def message_id(self) -> str:
        return f"<{self.notice_id}.{self.channel.value}@jiandu.notify>"


def unavailable_reason(
    settings: NotifySettings, channel: Channel, target: str | None
) -> str | None:
    """Why ``channel`` cannot deliver in this deployment (None: it can)."""
    if channel is Channel.INBOX:
        return None
    if not target:
        return {
            Channel.EMAIL: "no email address on file for the unit",
            Channel.WEBHOOK: "no webhook URL on file for the unit",
            Channel.SMS: "no mobile number on file for the unit",
        }[channel]
    if channel is Channel.EMAIL and not settings.smtp_host:
        return "SMTP is not configured (JIANDU_SMTP_HOST)"
    if channel is Channel.SMS and not settings.sms_gateway_url:
        return "the SMS gateway is not configured (JIANDU_SMS_GATEWAY_URL)"
    return None


def build_email(settings: NotifySettings, out: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{out.heading}（{out.doc_number}）"
    message["From"] = email.utils.formataddr((out.issuer_name, settings.smtp_sender))
    message["To"] = email.utils.formataddr((out.recipient_name, out.target))
    message["Message-ID"] = out.message_id
    message["Date"] = email.utils.formatdate(localtime=False)
    message["X-Jiandu-Notice"] = out.notice_id
    message["X-Jiandu-Doc-Number"] = out.doc_number
    message.set_content(out.text, charset="utf-8")
    return message


def sms_text(out: Outgoing) -> str:
    """Short text for the SMS gateway: what arrived, its number, and the 签收 deadline."""
    return (
        f"【{out.issuer_name}】{out.recipient_name}：你单位有一份{out.title}（{out.doc_number}）"
        f"待签收，请于{out.ack_deadline_cn}前登录行政执法监督平台查看并签收。"
    )


def webhook_payload(out: Outgoing) -> dict[str, Any]:
    return {
        "notice_id": out.notice_id,
        "delivery_id": out.delivery_id,
        "kind": out.kind,
        "doc_number": out.doc_number,
        "title": out.title,
        "heading": out.heading,
        "issuer": out.issuer_name,
        "recipient_unit": out.recipient_unit,
        "recipient_name": out.recipient_name,
        "ack_deadline": out.ack_deadline,
        "deadline": out.deadline,
        "text": out.text,
    }


class Transports:
    """The senders of one replica (one pooled HTTP client)."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.http_timeout_s,
                follow_redirects=False,
                headers={"User-Agent": "jiandu-notify/0.1"},
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(self, out: Outgoing) -> None:
        if out.channel is Channel.EMAIL:
            await self.send_email(out)
        elif out.channel is Channel.WEBHOOK:
            await self._post(out.target, webhook_payload(out), out.delivery_id)
        elif out.channel is Channel.SMS:
            url = self.settings.sms_gateway_url
            if not url:
                raise DeliveryError("the SMS gateway is not configured", permanent=True)
            body = {"to": out.target, "text": sms_text(out), "reference": out.delivery_id}
            await self._post(url, body, out.delivery_id)
        else:
            raise DeliveryError(f"channel {out.channel} has no transport", permanent=True)

    async def send_email(self, out: Outgoing) -> None:
        s = self.settings
        if not s.smtp_host:
            raise DeliveryError("SMTP is not configured", permanent=True)
        try:
            await aiosmtplib.send(
                build_email(s, out),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_start_tls,
                use_tls=s.smtp_use_tls,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise DeliveryError(
                f"recipient refused: {exc}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP unreachable: {exc!r}", permanent=False) from exc

    async def _post(self, url: str, body: dict[str, Any], delivery_id: str) -> None:
        try:
            response = await self.http.post(
                url, json=body, headers={"Idempotency-Key": delivery_id}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"HTTP unreachable: {exc!r}", permanent=False) from exc
        code = response.status_code
        if 200 <= code < 300:
            return
        retryable = code >= 500 or code in RETRYABLE_HTTP
        raise DeliveryError(f"HTTP {code}: {response.text[:200]}", permanent=not retryable)
