"""Pure rules of the notify service: numbering, deadlines, status, directory, rendering."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.notify.channels import Outgoing, build_email, sms_text, unavailable_reason
from services.notify.domain.directory import (
    UnitDirectory,
    load_directory,
    read_directory_file,
    resolve_target,
)
from services.notify.domain.notice import (
    KIND_ABBREVIATIONS,
    Channel,
    acknowledgement_deadline,
    backoff_s,
    cn_datetime,
    counter_key,
    derive_status,
    document_number,
    document_year,
    notice_id,
)
from services.notify.rendering import (
    LetterFields,
    OriginalNotice,
    context_items,
    render,
    sentence,
)
from services.notify.settings import NotifySettings
from shared.city import load_city
from shared.contracts import NOTICE_TITLES, NoticeKind
from shared.workcalendar import CST

DOC_NUMBER = re.compile(r"^(\w)司(\w)〔(\d{4})〕([1-9]\d*)号$")


def letter(**overrides: object) -> LetterFields:
    base: dict[str, object] = {
        "issuer_name": "静安区司法局",
        "recipient_name": "静安区城市管理行政执法局",
        "title": "督办函",
        "heading": "督办函",
        "doc_number": "静司督〔2026〕17号",
        "subject_label": "12345热线工单",
        "subject_id": "ORD-2026-0001",
        "summary": "该工单已被退单3次，群众反映的占道经营问题仍未解决",
        "deadline_cn": "2026年3月10日18时",
        "ack_deadline_cn": "2026年3月5日18时",
        "issued_date_cn": "2026年3月3日",
        "issued_datetime_cn": "2026年3月3日10时",
    }
    base.update(overrides)
    return LetterFields.model_validate(base)


# ---------------------------------------------------------------- numbering


def test_document_number_follows_the_official_scheme() -> None:
    number = document_number("静司", NoticeKind.SUPERVISION_LETTER, 2026, 17)
    assert number == "静司督〔2026〕17号"
    assert DOC_NUMBER.match(number)


def test_every_kind_has_its_own_abbreviation() -> None:
    assert set(KIND_ABBREVIATIONS) == set(NoticeKind)
    assert len(set(KIND_ABBREVIATIONS.values())) == len(NoticeKind)
    keys = {counter_key("静司", kind, 2026) for kind in NoticeKind}
    assert len(keys) == len(NoticeKind)  # one sequence per kind


def test_sequence_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        document_number("静司", NoticeKind.DECISION, 2026, 0)


def test_document_year_is_the_year_in_china() -> None:
    new_year_in_shanghai = dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC)  # 01:00 CST
    assert document_year(new_year_in_shanghai) == 2026


def test_notice_id_is_a_function_of_the_idempotency_key() -> None:
    assert notice_id("hotline:reminder:ORD-1") == notice_id("hotline:reminder:ORD-1")
    assert notice_id("hotline:reminder:ORD-1") != notice_id("hotline:reminder:ORD-2")


# ---------------------------------------------------------------- deadlines, retries, status


def test_future_request_deadline_is_the_acknowledgement_deadline() -> None:
    now = dt.datetime(2026, 3, 3, 10, 0, tzinfo=CST)
    wanted = now + dt.timedelta(days=3)
    assert acknowledgement_deadline(now, wanted, 1) == wanted


def test_past_or_missing_deadline_falls_back_to_working_days() -> None:
    # 2025-09-30 is the last working day before the National Day holiday (10-01..10-08).
    now = dt.datetime(2025, 9, 30, 10, 0, tzinfo=CST)
    expected = dt.datetime(2025, 10, 9, 18, 0, tzinfo=CST)
    assert acknowledgement_deadline(now, None, 1) == expected
    assert acknowledgement_deadline(now, now - dt.timedelta(days=1), 1) == expected
    assert acknowledgement_deadline(now, None, 0) == dt.datetime(2025, 9, 30, 18, 0, tzinfo=CST)


def test_backoff_doubles_and_is_capped() -> None:
    waits = [backoff_s(n, 2.0, 20.0) for n in range(1, 6)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 20.0]
    with pytest.raises(ValueError, match="attempt counts from 1"):
        backoff_s(0, 1.0, 10.0)


@pytest.mark.parametrize(
    ("channels", "acknowledged", "escalated", "expected"),
    [
        ({"inbox": "sent", "email": "pending"}, False, False, "pending"),
        ({"inbox": "sent", "email": "sent", "sms": "skipped"}, False, False, "sent"),
        ({"inbox": "sent", "email": "failed", "webhook": "pending"}, False, False, "failed"),
        ({"inbox": "sent", "email": "failed"}, False, True, "escalated"),
        ({"inbox": "sent", "email": "failed"}, True, True, "acknowledged"),
    ],
)
def test_notice_status(
    channels: dict[str, str], acknowledged: bool, escalated: bool, expected: str
) -> None:
    assert derive_status(channels, acknowledged=acknowledged, escalated=escalated) == expected


def test_chinese_dates() -> None:
    assert cn_datetime(dt.datetime(2026, 3, 5, 10, 0, tzinfo=dt.UTC)) == "2026年3月5日18时"
    assert cn_datetime(dt.datetime(2026, 3, 5, 9, 30, tzinfo=CST)) == "2026年3月5日9时30分"


# ---------------------------------------------------------------- unit directory


def test_directory_covers_every_unit_of_the_city_with_the_inbox_first() -> None:
    directory = load_directory()
    city = load_city()
    for unit in city.all_units():
        entry = directory.entry(unit.id)
        assert entry is not None, unit.id
        assert entry.channels[0] is Channel.INBOX
        assert entry.name == unit.name
    assert directory.entry("310000-sfj") is not None
    street = directory.entry("310106-st01-zhzf")
    assert street is not None and Channel.SMS in street.channels


def test_district_short_names_are_unique() -> None:
    directory = load_directory()
    names = [directory.short_name(d.code) for d in load_city().districts]
    assert len(set(names)) == len(names)
    assert directory.short_name("310106") == "静"
    assert directory.short_name("310000") == "沪"


def test_issuer_is_the_supervising_bureau() -> None:
    directory = load_directory()
    unit_issuer = directory.issuer_for("310106-cgzf")
    assert unit_issuer.unit == "310106-sfj"
    assert directory.issuer_prefix(unit_issuer) == "静司"
    bureau_issuer = directory.issuer_for("310106-sfj")
    assert bureau_issuer.unit == "310000-sfj"
    assert directory.issuer_prefix(bureau_issuer) == "沪司"
    # a request may name another justice bureau as issuer, but not an enforcement unit
    assert directory.issuer_for("310106-cgzf", "310000-sfj").unit == "310000-sfj"
    assert directory.issuer_for("310106-cgzf", "310106-scjg").unit == "310106-sfj"


def test_per_unit_configuration_and_settings_overrides(tmp_path: Path) -> None:
    raw = (Path("services/notify/data/directory.yaml")).read_text("utf-8")
    raw = raw.replace(
        "units: {}",
        'units:\n  "310106-cgzf":\n    channels: [email, sms]\n'
        "    email: duban@jingan.example\n    phone: '13900000000'\n"
        '  "310106-scjg":\n    webhook_url: https://scjg.example/hook\n',
    )
    path = tmp_path / "directory.yaml"
    path.write_text(raw, "utf-8")
    directory = UnitDirectory(load_city(), read_directory_file(str(path)))
    cgzf = directory.entry("310106-cgzf")
    assert cgzf is not None
    assert cgzf.channels == [Channel.INBOX, Channel.EMAIL, Channel.SMS]
    assert resolve_target(cgzf, Channel.EMAIL) == "duban@jingan.example"
    assert resolve_target(cgzf, Channel.SMS) == "13900000000"
    scjg = directory.entry("310106-scjg")
    assert scjg is not None
    assert resolve_target(scjg, Channel.WEBHOOK) == "https://scjg.example/hook"
    per_unit = {"310106-scjg": "http://127.0.0.1:1/unit"}
    assert resolve_target(scjg, Channel.WEBHOOK, webhook_urls=per_unit) == per_unit["310106-scjg"]
    assert (
        resolve_target(
            scjg, Channel.WEBHOOK, webhook_url_override="http://x/all", webhook_urls=per_unit
        )
        == "http://x/all"
    )


def test_unknown_directory_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(
        Path("services/notify/data/directory.yaml").read_text("utf-8") + "\nfax: true\n", "utf-8"
    )
    with pytest.raises(ValidationError, match=r"fax\s+Extra inputs are not permitted"):
        read_directory_file(str(path))


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_kind_renders_a_formal_letter(kind: NoticeKind) -> None:
    title = NOTICE_TITLES[kind]
    text = render(kind, letter(title=title, heading=title, items=["退单理由不成立"]))
    lines = text.splitlines()
    assert lines[0] == "静安区司法局" and lines[1] == title
    assert "静司督〔2026〕17号" in lines
    assert "静安区城市管理行政执法局：" in lines  # 主送机关
    assert "群众反映的占道经营问题仍未解决。" in text  # the summary, made a sentence
    assert f"请于2026年3月5日18时前在行政执法监督平台签收本{title}。" in text
    assert lines[-2].strip() == "静安区司法局" and lines[-1].strip() == "2026年3月3日"
    assert "{{" not in text and "{%" not in text
    assert "1．退单理由不成立。" in text or kind in (
        NoticeKind.REMINDER,
        NoticeKind.FILING_REMINDER,
    )


def test_deadline_sentence_only_when_there_is_a_deadline() -> None:
    with_deadline = render(NoticeKind.RECOMMENDATION, letter(title="监督建议书"))
    without = render(NoticeKind.RECOMMENDATION, letter(title="监督建议书", deadline_cn=None))
    assert "于2026年3月10日18时前将采纳情况书面回复我局" in with_deadline
    assert "2026年3月10日" not in without and "书面回复我局" in without


def test_escalation_reports_the_unacknowledged_original() -> None:
    original = OriginalNotice(
        issuer_name="静安区司法局",
        recipient_name="静安区城市管理行政执法局",
        title="督办函",
        doc_number="静司督〔2026〕17号",
        issued_date_cn="2026年3月3日",
        ack_deadline_cn="2026年3月5日18时",
    )
    text = render(
        NoticeKind.ESCALATION,
        letter(
            issuer_name="上海市司法局",
            recipient_name="静安区司法局",
            title="通报",
            heading="关于静安区城市管理行政执法局逾期未签收督办函的通报",
            doc_number="沪司通〔2026〕1号",
            original=original,
        ),
    )
    assert "《督办函》（静司督〔2026〕17号）" in text
    assert "要求其于2026年3月5日18时前签收" in text
    assert "请你局督促静安区城市管理行政执法局立即签收" in text


def test_sentence_and_items() -> None:
    assert sentence("已超期") == "已超期。"
    assert sentence("已超期。") == "已超期。"
    ctx = {"defects": [{"code": "D1", "label": "缺少送达回证"}, "执法人员少于2人", ""]}
    assert context_items(ctx) == ["缺少送达回证", "执法人员少于2人"]
    assert context_items({"defects": "not a list"}) == []


# ---------------------------------------------------------------- transports (no network)


def outgoing(channel: Channel = Channel.EMAIL) -> Outgoing:
    text = render(NoticeKind.SUPERVISION_LETTER, letter())
    return Outgoing(
        delivery_id="ntc-1:email",
        notice_id="ntc-1",
        channel=channel,
        target="310106-cgzf@jiandu.example",
        kind="supervision_letter",
        doc_number="静司督〔2026〕17号",
        title="督办函",
        heading="督办函",
        issuer_name="静安区司法局",
        recipient_unit="310106-cgzf",
        recipient_name="静安区城市管理行政执法局",
        ack_deadline="2026-03-05T10:00:00+00:00",
        ack_deadline_cn="2026年3月5日18时",
        deadline=None,
        text=text,
    )


def test_email_carries_the_rendered_text_and_a_stable_message_id() -> None:
    out = outgoing()
    raw = build_email(NotifySettings(), out).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "督办函（静司督〔2026〕17号）"
    assert parsed["Message-ID"] == "<ntc-1.email@jiandu.notify>"
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content().strip() == out.text.strip()


def test_sms_text_is_short_and_names_the_document() -> None:
    text = sms_text(outgoing(Channel.SMS))
    assert "静司督〔2026〕17号" in text and "2026年3月5日18时" in text
    assert len(text) <= 120


def test_unconfigured_transports_are_skipped_with_a_reason() -> None:
    bare = NotifySettings()
    assert unavailable_reason(bare, Channel.EMAIL, "a@b.example") is not None
    assert unavailable_reason(bare, Channel.SMS, "13900000000") is not None
    assert unavailable_reason(bare, Channel.WEBHOOK, None) is not None
    assert unavailable_reason(bare, Channel.WEBHOOK, "http://hook") is None
    assert unavailable_reason(bare, Channel.INBOX, "310106-cgzf") is None
    smtp = NotifySettings(smtp_host="127.0.0.1")
    assert unavailable_reason(smtp, Channel.EMAIL, "a@b.example") is None


def test_lease_must_outlive_a_send() -> None:
    with pytest.raises(ValidationError, match="must exceed the longest transport timeout"):
        NotifySettings(delivery_lease_s=5, smtp_timeout_s=10)
