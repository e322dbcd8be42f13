"""The notify aggregates: stored shape, round trips and the rules that change them (no servers)."""

from __future__ import annotations

import datetime as dt

from services.notify import storage
from services.notify.domain.aggregates import (
    MAX_HISTORY,
    Attempt,
    ChannelState,
    Counter,
    Delivery,
    Notice,
)
from services.notify.domain.notice import Channel
from shared.contracts import NoticeKind

T0 = dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(hours=3)


def notice(**overrides: object) -> Notice:
    fields: dict[str, object] = {
        "id": "ntc-1",
        "idempotency_key": "hotline:reminder:ORD-1",
        "kind": NoticeKind.SUPERVISION_LETTER,
        "title": "督办函",
        "heading": "督办函",
        "doc_number": "静司督〔2026〕1号",
        "year": 2026,
        "sequence": 1,
        "issuer": "310106-sfj",
        "issuer_name": "静安区司法局",
        "recipient_unit": "310106-cg",
        "recipient_name": "静安区城管执法局",
        "district": "310106",
        "subject_type": "complaint",
        "subject_id": "ORD-1",
        "summary": "工单逾期未办结",
        "context": {"contact": "张三", "items": [{"label": "逾期"}]},
        "deadline": None,
        "ack_deadline": T0 + dt.timedelta(days=2),
        "text": "正文",
        "channels": {
            "inbox": ChannelState.inbox("310106-cg", T0),
            "email": ChannelState.queued("cg@jiandu.example"),
            "sms": ChannelState.skipped(None, "no mobile number on file for the unit"),
        },
        "requested_by": "hotline",
        "request_event_id": "evt-1",
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    n = Notice.model_validate(fields)
    n.touch(n.updated_at)
    return n


def delivery(**overrides: object) -> Delivery:
    fields: dict[str, object] = {
        "id": "ntc-1:email",
        "notice_id": "ntc-1",
        "channel": Channel.EMAIL,
        "unit": "310106-cg",
        "target": "cg@jiandu.example",
        "next_attempt_at": T0,
    }
    fields.update(overrides)
    return Delivery.model_validate(fields)


# -- round trips and the stored shape -------------------------------------------------------


def test_notice_round_trips_through_its_document() -> None:
    n = notice()
    n.acknowledge(by="李四", note=None, at=LATER)
    n.set_channel("email", ChannelState.after("retry", target="x", attempts=1, at=LATER), LATER)
    assert storage.notice_of(storage.notice_doc(n)) == n


def test_notice_document_keeps_the_stored_shape() -> None:
    doc = storage.notice_doc(notice())
    assert doc["_id"] == "ntc-1" and "id" not in doc
    assert doc["kind"] == "supervision_letter" and doc["status"] == "pending"
    # a channel keeps only what applies to it, as it always did
    assert doc["channels"] == {
        "inbox": {"status": "sent", "target": "310106-cg", "sent_at": T0},
        "email": {"status": "pending", "target": "cg@jiandu.example", "attempts": 0},
        "sms": {"status": "skipped", "reason": "no mobile number on file for the unit"},
    }


def test_delivery_round_trips_through_its_document() -> None:
    d = delivery(attempts=2, claim_token="tok", claimed_by="a", claim_until=LATER)
    d.settle("retry", at=LATER, wall=LATER, error="HTTP 503", retry_at=LATER)
    doc = storage.delivery_doc(d)
    assert doc["_id"] == "ntc-1:email" and doc["channel"] == "email"
    assert storage.delivery_of(doc) == d


def test_counter_round_trips_through_its_document() -> None:
    c = Counter(id="静司督:2026", seq=16)
    assert storage.counter_doc(c) == {"_id": "静司督:2026", "seq": 16}
    assert storage.counter_of(storage.counter_doc(c)) == c


def test_documents_written_before_the_models_still_load() -> None:
    """An old delivery without ``resent_at`` or history, an unacknowledged old notice."""
    d = storage.delivery_of(
        {
            "_id": "ntc-1:sms",
            "notice_id": "ntc-1",
            "channel": "sms",
            "unit": "310106-cg",
            "target": "13800000000",
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": T0,
        }
    )
    assert d.channel is Channel.SMS and d.history == [] and d.resent_at is None
    doc = storage.notice_doc(notice())
    del doc["ack_note"], doc["acknowledged_late"]
    assert storage.notice_of(doc).ack_note is None


# -- rules ------------------------------------------------------------------------------


def test_counter_numbers_from_one() -> None:
    c = Counter(id="k")
    assert [c.next(), c.next(), c.next()] == [1, 2, 3] and c.seq == 3


def test_acknowledging_is_once_and_knows_when_it_is_late() -> None:
    n = notice()
    late_at = n.ack_deadline + dt.timedelta(minutes=1)
    assert n.acknowledge(by="李四", note="收到", at=late_at)
    assert n.status == "acknowledged" and n.acknowledged_late is True
    assert n.updated_at == late_at and n.ack_note == "收到"
    assert not n.acknowledge(by="王五", note=None, at=late_at + dt.timedelta(hours=1))
    assert n.acknowledged_by == "李四" and n.updated_at == late_at


def test_escalation_only_while_unacknowledged() -> None:
    n = notice()
    assert n.needs_escalation()
    n.escalate(to="310000-sfj", escalation_notice_id="ntc-2", at=LATER)
    assert n.status == "escalated" and not n.needs_escalation()
    assert (n.escalated_to, n.escalation_notice_id, n.updated_at) == ("310000-sfj", "ntc-2", LATER)
    other = notice()
    other.acknowledge(by="李四", note=None, at=T0)
    assert not other.needs_escalation()


def test_channel_outcomes_drive_the_notice_status() -> None:
    n = notice()
    sent = ChannelState.after("sent", target="cg@jiandu.example", attempts=1, at=LATER)
    n.set_channel("email", sent, LATER)
    assert n.status == "sent" and n.channels["email"].sent_at == LATER
    failed = ChannelState.after("failed", target="cg", attempts=3, at=LATER, error="HTTP 500")
    n.set_channel("email", failed, LATER)
    assert n.status == "failed" and n.channels["email"].error == "HTTP 500"
    assert n.external_channels() == [Channel.EMAIL, Channel.SMS]


def test_settling_releases_the_claim_and_keeps_a_bounded_history() -> None:
    d = delivery(attempts=1, claim_token="tok", claimed_by="a", claim_until=LATER)
    assert d.held_by("tok") and not d.held_by("other")
    assert d.being_attempted(T0) and not d.being_attempted(LATER)
    d.history = [Attempt(attempt=i, at=T0, outcome="retry") for i in range(MAX_HISTORY)]
    d.settle("sent", at=LATER, wall=LATER)
    assert d.status == "sent" and d.sent_at == LATER and d.last_error is None
    assert (d.claim_token, d.claimed_by, d.claim_until) == (None, None, None)
    assert len(d.history) == MAX_HISTORY
    assert d.history[-1] == Attempt(attempt=1, at=LATER, outcome="sent")
    assert not d.held_by("tok")


def test_a_retry_waits_and_a_failure_is_final() -> None:
    d = delivery(attempts=2, claim_token="tok")
    d.settle("retry", at=T0, wall=T0, error="HTTP 503", retry_at=LATER)
    assert d.status == "pending" and d.next_attempt_at == LATER and d.last_error == "HTTP 503"
    d.claim_token = "tok2"
    d.settle("failed", at=LATER, wall=LATER, error="HTTP 404")
    assert d.status == "failed" and d.failed_at == LATER
    assert [h.outcome for h in d.history] == ["retry", "failed"]


def test_requeue_starts_the_attempts_again() -> None:
    d = delivery(status="failed", attempts=3, resends=1, last_error="HTTP 500")
    d.requeue(at=LATER, wall=T0)
    assert (d.status, d.attempts, d.resends, d.last_error) == ("pending", 0, 2, None)
    assert d.next_attempt_at == T0 and d.resent_at == LATER


def test_a_claim_given_back_unused_does_not_count_as_an_attempt() -> None:
    d = delivery(attempts=2, claim_token="tok", claimed_by="a", claim_until=LATER)
    d.give_back()
    assert d.attempts == 1 and d.status == "pending" and d.next_attempt_at == T0
    assert d.claim_token is None and d.claimed_by is None and d.claim_until is None
    assert d.history == []
