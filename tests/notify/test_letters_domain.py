"""Supervision letters' pure rules: reply windows and who may reply (no servers)."""

from __future__ import annotations

import datetime as dt

from services.notify.domain.directory import load_directory
from services.notify.domain.letters import Letter, reply_deadline
from shared.contracts import NoticeKind
from shared.workcalendar import CST


def test_a_short_window_counts_working_days() -> None:
    """行政处罚法第八十五条: “五日” is five working days; 清明 (2026-04-04..06) does not count."""
    issued = dt.datetime(2026, 4, 2, 10, 0, tzinfo=CST)  # Thursday before 清明
    due = reply_deadline(issued, 5)
    assert due.astimezone(CST) == dt.datetime(2026, 4, 10, 18, 0, tzinfo=CST)


def test_a_long_window_counts_calendar_days_and_rolls_off_a_holiday() -> None:
    """15 days (MISSION: 监督建议书 reply due in 15 days) are calendar days; a last day in the
    劳动节 holiday (2026-05-01..05) rolls to the next working day."""
    plain = reply_deadline(dt.datetime(2026, 3, 2, 10, 0, tzinfo=CST), 15)
    assert plain.astimezone(CST) == dt.datetime(2026, 3, 17, 18, 0, tzinfo=CST)
    rolled = reply_deadline(dt.datetime(2026, 4, 20, 10, 0, tzinfo=CST), 15)  # day 15: May 5
    assert rolled.astimezone(CST) == dt.datetime(2026, 5, 6, 18, 0, tzinfo=CST)


def letter(kind: NoticeKind, recipient: str) -> Letter:
    at = dt.datetime(2026, 3, 2, 10, 0, tzinfo=CST)
    return Letter(
        id="ntc-1",
        kind=kind,
        title="督办函",
        doc_number="静司督〔2026〕1号",
        issuer="310106-sfj",
        issuer_name="静安区司法局",
        issued_by="李监督",
        recipient_unit=recipient,
        recipient_name="x",
        district="310106",
        subject_type="lead",
        subject_id="lead-1",
        summary="s",
        issued_at=at,
        reply_days=5,
        reply_due=reply_deadline(at, 5),
    )


def test_the_recipient_replies_once_and_late_is_recorded() -> None:
    item = letter(NoticeKind.SUPERVISION_LETTER, "310106-cgzf")
    assert not item.may_reply("310106-sfj")  # the bureau does not answer for the unit
    late = item.reply_due + dt.timedelta(hours=1)
    assert item.record_reply(unit="310106-cgzf", by="张三", content="已整改", at=late)
    assert item.status == "replied" and item.reply is not None and item.reply.late
    assert not item.record_reply(unit="310106-cgzf", by="张三", content="again", at=late)
    assert not item.needs_escalation()


def test_a_transfer_letters_feedback_is_recorded_by_its_bureau() -> None:
    item = letter(NoticeKind.TRANSFER, "310106-jjjc")
    assert item.may_reply("310106-sfj") and item.may_reply("310106-jjjc")
    assert not item.may_reply("310106-cgzf")


def test_the_directory_knows_every_discipline_body() -> None:
    """Seed 000/003: 线索 are transferred to the 纪检监察机关 (移送函 recipients)."""
    directory = load_directory()
    body = directory.entry("310106-jjjc")
    assert body is not None and body.name == "静安区纪委监委" and body.kind == "discipline"
    city = directory.entry("310000-jjjc")
    assert city is not None and city.name == "上海市纪委监委"
    assert directory.issuer_for("310106-jjjc").unit == "310106-sfj"
