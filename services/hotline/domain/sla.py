"""SLA deadlines of 12345 work orders on working days (工作日, with 调休 make-up days).

- 签收: within ``ack_hours`` office hours of each dispatch (09:00–12:00, 13:00–18:00 CST).
- 办结: by the close of the working day ``days`` working days after the day received
  (complaint 13, consultation 3; emergency 0 = the same working day).
- 延期: an approved extension moves the deadline by its working days.
- 通报: once overdue by ``escalate_after_days`` working days (counted from the deadline's day).
"""

from __future__ import annotations

import datetime as dt

from shared.workcalendar import CST, OfficeHours, working_days_between

HOURS = OfficeHours()


def local(when: dt.datetime) -> dt.datetime:
    """Aware CST time; a naive time from the 12345 platform is taken as Beijing time."""
    return when.replace(tzinfo=CST) if when.tzinfo is None else when.astimezone(CST)


def ack_deadline(dispatched_at: dt.datetime, hours: float) -> dt.datetime:
    return HOURS.add_working_hours(local(dispatched_at), hours).astimezone(dt.UTC)


def resolve_limit_days(kind: str, limits: dict[str, int], matter_override: dict[str, int]) -> int:
    """Working days allowed for this kind of order (the matter's own limit wins)."""
    if kind in matter_override:
        return matter_override[kind]
    return limits.get(kind, limits.get("complaint", 13))


def resolve_deadline(received_at: dt.datetime, days: int) -> dt.datetime:
    """An order received after hours (or on a day off) starts on the next working morning."""
    start = HOURS.add_working_hours(local(received_at), 0)
    return HOURS.end_of_working_day(start, days).astimezone(dt.UTC)


def extend_deadline(due: dt.datetime, days: int) -> dt.datetime:
    """The deadline after an approved 延期 of ``days`` working days."""
    return HOURS.end_of_working_day(local(due), days).astimezone(dt.UTC)


def escalation_due(due: dt.datetime, after_days: int) -> dt.datetime:
    """When a complaint still open has been overdue for ``after_days`` full working days."""
    return HOURS.end_of_working_day(local(due), after_days).astimezone(dt.UTC)


def working_days_overdue(due: dt.datetime, now: dt.datetime) -> int:
    """Working days between the deadline's day and now (0 while not overdue)."""
    if now <= due:
        return 0
    return max(0, working_days_between(local(due).date(), local(now).date()))
