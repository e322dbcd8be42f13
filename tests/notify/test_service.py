"""The notify service on the real embedded Kafka and MongoDB, a real SMTP server (aiosmtpd)
and a real HTTP receiver, with a ManualClock for 签收 deadlines."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pymongo.errors import DuplicateKeyError

from devtools.embedded import free_port
from services.notify.domain.directory import load_directory
from services.notify.domain.notice import notice_id
from services.notify.handlers import NotifyWorkflow
from services.notify.main import build
from services.notify.settings import NotifySettings
from shared.clock import ManualClock
from shared.contracts import NoticeKind, NotificationRequest
from shared.envelope import Envelope
from shared.service import Service
from shared.topics import INGEST_QUARANTINE, NOTIFY_EVENTS, NOTIFY_REQUESTS
from shared.workcalendar import CST
from tests.helpers import KafkaTap, Publisher, api_client, applied_ids

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=CST)  # a Monday, a working day
UNIT = "310106-cgzf"  # 静安区城市管理行政执法局: inbox, email, webhook
UNIT_NAME = "静安区城市管理行政执法局"
BUREAU = "310106-sfj"  # its supervising bureau

Settings = Callable[..., NotifySettings]


# ---------------------------------------------------------------- a real SMTP server


class Mailbox:
    """aiosmtpd handler: keeps every message it accepts, parsed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._messages.append(parsed)
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def for_notice(self, nid: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["X-Jiandu-Notice"] == nid]


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()


# ---------------------------------------------------------------- a real HTTP receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    """A small HTTP/1.1 server on asyncio streams; each path answers from its script."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            path = request_line[1]
            script = self.scripts.get(path, [])
            status = script.pop(0) if script else 200
            self.received.append(Received(path, headers, json.loads(raw or b"{}"), status))
            reply = b'{"ok": true}' if status < 300 else b'{"error": "unavailable"}'
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


# ---------------------------------------------------------------- helpers


def make_settings(settings_for: Settings, **overrides: Any) -> NotifySettings:
    base: dict[str, Any] = {
        "delivery_backoff_s": 0.02,
        "delivery_backoff_max_s": 0.1,
        "delivery_poll_s": 0.05,
        "delivery_attempts": 4,
    }
    return settings_for(NotifySettings, **{**base, **overrides})


def request(
    key: str,
    *,
    kind: NoticeKind = NoticeKind.SUPERVISION_LETTER,
    unit: str = UNIT,
    deadline: dt.datetime | None = None,
    summary: str = "该工单已被退单3次，群众反映的占道经营问题仍未解决",
) -> NotificationRequest:
    return NotificationRequest(
        idempotency_key=key,
        kind=kind,
        recipient_unit=unit,
        district=unit[:6],
        subject_type="complaint",
        subject_id=f"ORD-{key}",
        summary=summary,
        deadline=deadline,
        context={"defects": ["退单理由“不属于本部门职责”不成立"]},
        requested_by="hotline",
    )


def event_of(req: NotificationRequest) -> Envelope:
    return req.to_event("/jiandu/hotline")


def of_notice(nid: str, verb: str) -> Callable[[Envelope], bool]:
    return lambda e: e.type == f"jiandu.notify.notice.{verb}" and e.partitionkey == nid


def count(events: list[Envelope], pred: Callable[[Envelope], bool]) -> int:
    return sum(1 for e in events if pred(e))


def sent_on(channel: str, nid: str) -> Callable[[list[Envelope]], bool]:
    return lambda es: any(
        of_notice(nid, "sent")(e) and e.data["change"]["channel"] == channel for e in es
    )


# ---------------------------------------------------------------- email


async def test_email_arrives_with_the_rendered_chinese_letter(
    settings_for: Settings, publisher: Publisher, tap: Any, smtp: SmtpServer, receiver: Receiver
) -> None:
    settings = make_settings(
        settings_for,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        webhook_url_override=receiver.url("/hooks"),
    )
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    req = request("letter-1", deadline=START + dt.timedelta(days=7))
    nid = notice_id(req.idempotency_key)
    async with build(settings, clock=ManualClock(START)).running() as svc:
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(req))
        await out.wait_for_events(sent_on("email", nid))
        await out.wait_for_events(sent_on("webhook", nid))
        async with api_client(svc) as client:
            notice = (await client.get(f"/v1/notices/{nid}")).json()
            deliveries = (await client.get(f"/v1/notices/{nid}/deliveries")).json()

    # the first 督办函 of 2026 signed by the Jing'an justice bureau
    assert notice["doc_number"] == "静司督〔2026〕1号"
    assert notice["issuer_name"] == "静安区司法局"
    assert notice["status"] == "sent"
    (message,) = smtp.mailbox.for_notice(nid)
    assert message["Subject"] == "督办函（静司督〔2026〕1号）"
    assert message["To"].addresses[0].addr_spec == f"{UNIT}@jiandu.example"
    assert message["To"].addresses[0].display_name == UNIT_NAME
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert text.strip() == notice["text"].strip()
    assert f"{UNIT_NAME}：" in text
    assert "群众反映的占道经营问题仍未解决。" in text
    assert "1．退单理由“不属于本部门职责”不成立。" in text
    assert "于2026年3月9日9时30分前将办理结果书面报送我局" in text
    assert text.rstrip().endswith("2026年3月2日")
    # the webhook got the same letter, and every channel reports its status
    (hook,) = receiver.at("/hooks")
    assert hook.body["doc_number"] == "静司督〔2026〕1号" and hook.body["text"] == notice["text"]
    assert hook.headers["idempotency-key"] == f"{nid}:webhook"
    assert {d["channel"]: d["status"] for d in deliveries} == {
        "inbox": "sent",
        "email": "sent",
        "webhook": "sent",
    }


# ---------------------------------------------------------------- retries


async def test_receiver_failing_twice_then_succeeding_yields_one_delivery(
    settings_for: Settings, publisher: Publisher, tap: Any, receiver: Receiver
) -> None:
    settings = make_settings(settings_for, webhook_urls={UNIT: receiver.url("/flaky")})
    receiver.scripts["/flaky"] = [503, 503, 200]
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    req = request("flaky-1")
    nid = notice_id(req.idempotency_key)
    async with build(settings, clock=ManualClock(START)).running() as svc:
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(req))
        events = await out.wait_for_events(sent_on("webhook", nid))
        async with api_client(svc) as client:
            rows = (await client.get(f"/v1/notices/{nid}/deliveries")).json()
            metrics = (await client.get("/metrics")).text

    calls = receiver.at("/flaky")
    assert [c.status for c in calls] == [503, 503, 200]
    assert {c.headers["idempotency-key"] for c in calls} == {f"{nid}:webhook"}
    webhook = next(r for r in rows if r["channel"] == "webhook")
    assert webhook["status"] == "sent" and webhook["attempts"] == 3
    assert [h["outcome"] for h in webhook["history"]] == ["retry", "retry", "sent"]
    assert "HTTP 503" in webhook["history"][0]["error"]
    assert count(events, of_notice(nid, "sent")) == 1
    assert count(events, of_notice(nid, "failed")) == 0
    assert 'jiandu_notify_delivery_attempts_total{channel="webhook",outcome="retry"} 2.0' in metrics


async def test_permanent_failure_is_recorded_surfaced_and_can_be_resent(
    settings_for: Settings, publisher: Publisher, tap: Any, receiver: Receiver
) -> None:
    settings = make_settings(
        settings_for,
        delivery_attempts=3,
        webhook_urls={UNIT: receiver.url("/down"), "310106-scjg": receiver.url("/gone")},
    )
    receiver.scripts["/down"] = [500, 500, 500]  # transient each time, but never recovers
    receiver.scripts["/gone"] = [404]  # permanent: no point retrying
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    down, gone = request("down-1"), request("gone-1", unit="310106-scjg")
    down_id, gone_id = notice_id(down.idempotency_key), notice_id(gone.idempotency_key)
    async with build(settings, clock=ManualClock(START)).running() as svc:
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(down))
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(gone))
        events = await out.wait_for_events(
            lambda es: (
                any(of_notice(down_id, "failed")(e) for e in es)
                and any(of_notice(gone_id, "failed")(e) for e in es)
            )
        )
        failed = next(e for e in events if of_notice(down_id, "failed")(e))
        assert failed.data["change"]["channel"] == "webhook"
        assert failed.data["change"]["attempts"] == 3
        assert "HTTP 500" in failed.data["change"]["error"]
        assert failed.data["notice"]["status"] == "failed"
        assert len(receiver.at("/down")) == 3
        assert len(receiver.at("/gone")) == 1  # a 404 is not retried
        async with api_client(svc) as client:
            listed = (await client.get("/v1/notices", params={"status": "failed"})).json()
            assert {n["id"] for n in listed["items"]} == {down_id, gone_id}
            # the receiver is back: an operator resends
            resent = await client.post(f"/v1/notices/{down_id}/resend", json={})
            assert resent.status_code == 202
            assert [d["channel"] for d in resent.json()] == ["webhook"]
            events = await out.wait_for_events(sent_on("webhook", down_id))
            notice = (await client.get(f"/v1/notices/{down_id}")).json()
            inbox_resend = await client.post(
                f"/v1/notices/{down_id}/resend", json={"channels": ["inbox"]}
            )
    assert notice["status"] == "sent" and notice["channels"]["webhook"]["status"] == "sent"
    assert len(receiver.at("/down")) == 4
    assert inbox_resend.status_code == 409


# ---------------------------------------------------------------- exactly one notice


async def test_same_request_three_times_yields_one_notice_and_one_email(
    settings_for: Settings, publisher: Publisher, tap: Any, smtp: SmtpServer
) -> None:
    settings = make_settings(settings_for, smtp_host="127.0.0.1", smtp_port=smtp.port)
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    req = request("twice-1", kind=NoticeKind.REMINDER)
    nid = notice_id(req.idempotency_key)
    first = event_of(req)
    again = event_of(req)  # the producer asked again: new event id, same idempotency key
    assert again.id != first.id
    # a later request on the same partition: once it is handled, the three copies are too
    marker_req = request("twice-marker", kind=NoticeKind.REMINDER)
    marker = event_of(marker_req).model_copy(update={"partitionkey": req.idempotency_key})
    marker_id = notice_id(marker_req.idempotency_key)
    async with build(settings, clock=ManualClock(START)).running() as svc:
        for event in (first, first, again, marker):
            await publisher.event(svc.topic(NOTIFY_REQUESTS), event)
        events = await out.wait_for_events(sent_on("email", marker_id))
        await out.wait_for_events(sent_on("email", nid))
        notices = await svc.db["notices"].find({"subject_id": "ORD-twice-1"}).to_list()
        # the re-asked request was handled (as a no-op), not failed towards the DLT
        handled = sum(1 for i in await applied_ids(svc.db) if i.endswith(f":{again.id}"))
        async with api_client(svc) as client:
            inbox = (await client.get(f"/v1/units/{UNIT}/inbox")).json()
    assert len(notices) == 1 and notices[0]["_id"] == nid
    assert handled == 1
    assert count(events, of_notice(nid, "created")) == 1
    assert len(smtp.mailbox.for_notice(nid)) == 1
    assert inbox["total"] == 2  # the notice and the marker, nothing else
    # numbers were taken only by notices that exist: 1 and 2, no gap from the duplicates
    assert sorted(n["doc_number"] for n in inbox["items"]) == [
        "静司催〔2026〕1号",
        "静司催〔2026〕2号",
    ]


async def test_two_replicas_issue_and_send_each_notice_once(
    settings_for: Settings, publisher: Publisher, tap: Any, smtp: SmtpServer
) -> None:
    common = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "delivery_concurrency": 3}
    settings_a = make_settings(settings_for, instance_id="notify-a", **common)
    settings_b = make_settings(settings_for, instance_id="notify-b", **common)
    out: KafkaTap = await tap(settings_a.topic_prefix + NOTIFY_EVENTS.name)
    reqs = [request(f"pair-{i}", unit=f"310106-st0{i % 5 + 1}-zhzf") for i in range(6)]
    ids = {notice_id(r.idempotency_key) for r in reqs}
    clock = ManualClock(START)
    async with (
        build(settings_a, clock=clock).running() as a,
        build(settings_b, clock=clock).running() as b,
    ):
        # the same request issued by both replicas at the same moment
        race = request("race-1")
        workflow = NotifyWorkflow(settings_a, a.source, load_directory())

        async def issue(svc: Service) -> bool:
            for _ in range(3):  # what the consumer does: retry an aborted transaction
                try:
                    return await svc.run_in_uow(lambda uow: workflow.issue(race, uow)) is not None
                except DuplicateKeyError:
                    continue
            raise AssertionError("never settled")

        results = await asyncio.gather(issue(a), issue(b))
        assert sorted(results) == [False, True]
        for r in reqs:
            await publisher.event(a.topic(NOTIFY_REQUESTS), event_of(r))
            await publisher.event(a.topic(NOTIFY_REQUESTS), event_of(r))  # a second copy
        ids.add(notice_id(race.idempotency_key))
        events = await out.wait_for_events(
            lambda es: {e.partitionkey for e in es if e.type.endswith(".sent")} >= ids, timeout=40
        )
        notices = await a.db["notices"].find({}).to_list()
        counter = await b.db["counters"].find_one({"_id": "静司督:2026"})
    assert len(notices) == len(ids)
    assert counter is not None and counter["seq"] == len(ids)  # no number burnt by the race
    assert sorted(n["sequence"] for n in notices) == list(range(1, len(ids) + 1))
    for nid in ids:
        assert len(smtp.mailbox.for_notice(nid)) == 1, nid
        assert count(events, of_notice(nid, "created")) == 1
        assert count(events, of_notice(nid, "sent")) == 1


# ---------------------------------------------------------------- 签收 and escalation


async def test_unacknowledged_notice_escalates_once_when_its_deadline_passes(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = make_settings(settings_for)
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    clock = ManualClock(START)
    deadline = START + dt.timedelta(days=1)
    req = request("escalate-1", deadline=deadline)
    nid = notice_id(req.idempotency_key)
    async with build(settings, clock=clock).running() as svc:
        assert svc.timers is not None
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(req))
        await out.wait_for_events(lambda es: any(of_notice(nid, "created")(e) for e in es))
        clock.set(deadline - dt.timedelta(minutes=1))
        assert await svc.timers.tick() == 0  # not yet
        clock.set(deadline + dt.timedelta(minutes=1))
        assert await svc.timers.tick() == 1
        assert await svc.timers.tick() == 0
        clock.advance(dt.timedelta(days=30))  # the escalation itself does not escalate
        assert await svc.timers.tick() == 0
        events = await out.wait_for_events(
            lambda es: any(of_notice(nid, "escalated")(e) for e in es)
        )
        escalated = next(e for e in events if of_notice(nid, "escalated")(e))
        esc_id = escalated.data["change"]["escalation_notice_id"]
        await out.wait_for_events(lambda es: any(of_notice(esc_id, "created")(e) for e in es))
        async with api_client(svc) as client:
            bureau_inbox = (await client.get(f"/v1/units/{BUREAU}/inbox")).json()
            escalation = (await client.get(f"/v1/notices/{esc_id}")).json()
            original = (await client.get(f"/v1/notices/{nid}")).json()
    assert escalated.data["change"]["to"] == BUREAU
    assert escalated.data["notice"]["status"] == "escalated"
    assert original["status"] == "escalated" and original["escalated_to"] == BUREAU
    assert [n["id"] for n in bureau_inbox["items"]] == [esc_id]
    assert escalation["kind"] == "escalation" and escalation["recipient_unit"] == BUREAU
    assert escalation["doc_number"] == "沪司通〔2026〕1号"  # signed by the city bureau
    assert f"《督办函》（{original['doc_number']}）" in escalation["text"]
    assert f"请你局督促{UNIT_NAME}立即签收" in escalation["text"]
    assert count(out.events(), of_notice(nid, "escalated")) == 1


async def test_acknowledged_notice_does_not_escalate(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = make_settings(settings_for)
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    clock = ManualClock(START)
    deadline = START + dt.timedelta(days=1)
    req = request("ack-1", deadline=deadline)
    nid = notice_id(req.idempotency_key)
    async with build(settings, clock=clock).running() as svc:
        assert svc.timers is not None
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(req))
        await out.wait_for_events(lambda es: any(of_notice(nid, "created")(e) for e in es))
        clock.advance(dt.timedelta(hours=2))
        async with api_client(svc) as client:
            stranger = await client.post(
                f"/v1/notices/{nid}/acknowledge", json={"unit": "310106-scjg", "by": "李四"}
            )
            first = await client.post(
                f"/v1/notices/{nid}/acknowledge", json={"unit": UNIT, "by": "张三", "note": "已阅"}
            )
            clock.advance(dt.timedelta(hours=1))
            again = await client.post(
                f"/v1/notices/{nid}/acknowledge", json={"unit": UNIT, "by": "王五"}
            )
            clock.set(deadline + dt.timedelta(days=2))
            fired = await svc.timers.tick()
            bureau_inbox = (await client.get(f"/v1/units/{BUREAU}/inbox")).json()
            acknowledged = (
                await client.get(f"/v1/units/{UNIT}/inbox", params={"acknowledged": "true"})
            ).json()
        events = await out.wait_for_events(
            lambda es: any(of_notice(nid, "acknowledged")(e) for e in es)
        )
        timer = await svc.db["timers"].find_one({"_id": f"notify:escalation:{nid}"})
    assert stranger.status_code == 404  # another unit's notice is out of its scope
    assert first.status_code == 200 and first.json()["status"] == "acknowledged"
    assert first.json()["acknowledged_by"] == "张三" and first.json()["acknowledged_late"] is False
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "张三"  # unchanged
    assert fired == 0
    assert timer is not None and timer["status"] == "cancelled"
    assert bureau_inbox["total"] == 0
    assert [n["id"] for n in acknowledged["items"]] == [nid]
    assert count(events, of_notice(nid, "acknowledged")) == 1
    assert count(events, of_notice(nid, "escalated")) == 0


# ---------------------------------------------------------------- bad input, API errors


async def test_bad_requests_are_quarantined_and_api_answers_4xx(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = make_settings(settings_for)
    quarantine: KafkaTap = await tap(settings.topic_prefix + INGEST_QUARANTINE.name)
    unknown = request("nobody-1", unit="310106-xxxx")
    bad = event_of(request("bad-1")).model_copy(update={"data": {"kind": "poem"}})
    async with build(settings, clock=ManualClock(START)).running() as svc:
        await publisher.event(svc.topic(NOTIFY_REQUESTS), event_of(unknown))
        await publisher.event(svc.topic(NOTIFY_REQUESTS), bad)
        records = await quarantine.wait_for_events(lambda es: len(es) >= 2)
        async with api_client(svc) as client:
            missing = await client.get("/v1/notices/ntc-nope")
            no_unit = await client.get("/v1/units/999999-abc/inbox")
            bad_limit = await client.get(f"/v1/units/{UNIT}/inbox", params={"limit": 0})
            bad_kind = await client.get("/v1/notices", params={"kind": "poem"})
            ack_missing = await client.post(
                "/v1/notices/ntc-nope/acknowledge", json={"unit": UNIT, "by": "张三"}
            )
            ack_empty = await client.post("/v1/notices/ntc-nope/acknowledge", json={})
            unit = (await client.get("/v1/units/310106-st01-zhzf")).json()
        assert await svc.db["notices"].count_documents({}) == 0
    reasons = sorted(e.data["reason"] for e in records)
    assert any("unknown unit '310106-xxxx'" in r for r in reasons)
    assert any("kind" in r for r in reasons)
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    assert no_unit.status_code == 404
    assert bad_limit.status_code == 422 and bad_kind.status_code == 422
    # unit and officer come from the token: an empty body is a valid 签收 of a missing notice
    assert ack_missing.status_code == 404 and ack_empty.status_code == 404
    assert unit["channels"] == ["inbox", "email", "sms"]
