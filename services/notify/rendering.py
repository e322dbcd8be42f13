"""Rendering notices from the Chinese jinja2 templates in ``templates/`` (one per NoticeKind).

Templates are plain text in official-letter layout (公文格式); the rendered text is stored
with the notice when it is issued, so what the unit reads never changes afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel

from services.notify.domain.aggregates import Notice
from services.notify.domain.letters import Letter
from services.notify.domain.notice import cn_date, cn_datetime
from shared.clock import utc
from shared.contracts import NoticeKind

SUBJECT_LABELS: dict[str, str] = {
    "complaint": "12345热线工单",
    "case": "行政执法案件",
    "filing": "顶格处罚备案事项",
    "review": "案卷评查事项",
    "rectification": "整改事项",
    "lead": "监督线索事项",
}

ITEM_KEYS = ("items", "issues", "defects", "findings")
ITEM_TEXT_KEYS = ("label", "description", "title", "name", "reason", "code")
MAX_ITEMS = 30
SENTENCE_ENDS = ("。", "！", "？", "；", "…", ".", "!", "?")


class OriginalNotice(BaseModel):
    """The unacknowledged notice an escalation (通报) reports on."""

    issuer_name: str
    recipient_name: str
    title: str
    doc_number: str
    issued_date_cn: str
    ack_deadline_cn: str
    reply_due_cn: str | None = None  # an unanswered letter (逾期未回复) rather than unsigned


def escalation_of(original: Notice, overdue_letter: Letter | None) -> tuple[str, OriginalNotice]:
    """An escalation's heading (关于…逾期未签收/未回复…的通报) and what its text quotes of
    the original notice (and of the letter whose reply is overdue)."""
    missing = "回复" if overdue_letter is not None else "签收"
    heading = f"关于{original.recipient_name}逾期未{missing}{original.title}的通报"
    quoted = OriginalNotice(
        issuer_name=original.issuer_name,
        recipient_name=original.recipient_name,
        title=original.title,
        doc_number=original.doc_number,
        issued_date_cn=cn_date(utc(original.created_at)),
        ack_deadline_cn=cn_datetime(utc(original.ack_deadline)),
        reply_due_cn=cn_datetime(utc(overdue_letter.reply_due)) if overdue_letter else None,
    )
    return heading, quoted


class LetterFields(BaseModel):
    """Everything a template may use."""

    issuer_name: str
    recipient_name: str
    title: str
    heading: str
    doc_number: str
    subject_label: str
    subject_id: str
    summary: str
    deadline_cn: str | None = None
    ack_deadline_cn: str
    issued_date_cn: str
    issued_datetime_cn: str
    items: list[str] = []
    contact: str | None = None
    original: OriginalNotice | None = None


def sentence(value: object) -> str:
    """End a clause with 。 unless it already ends a sentence."""
    text = str(value).strip()
    return text if not text or text.endswith(SENTENCE_ENDS) else text + "。"


def context_items(context: Mapping[str, Any]) -> list[str]:
    """Listed findings from a request's context (defects, issues …) as short lines."""
    for key in ITEM_KEYS:
        raw = context.get(key)
        if not isinstance(raw, list):
            continue
        items: list[str] = []
        for item in raw[:MAX_ITEMS]:
            if isinstance(item, Mapping):
                text = next((str(item[k]) for k in ITEM_TEXT_KEYS if item.get(k)), "")
            else:
                text = str(item)
            if text.strip():
                items.append(text.strip()[:300])
        return items
    return []


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("services.notify", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # plain-text letters, never HTML
    )
    env.filters["sentence"] = sentence
    return env


def template_name(kind: NoticeKind) -> str:
    return f"{kind.value}.txt.j2"


def render(kind: NoticeKind, fields: LetterFields) -> str:
    """The full text of a notice of ``kind``."""
    text = environment().get_template(template_name(kind)).render(**fields.model_dump())
    return text.strip() + "\n"
