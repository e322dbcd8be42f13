"""SLA arithmetic on the Chinese working calendar: National Day 2025 (10-01..10-08 off) and its
make-up working days (Sunday 2025-09-28 and Saturday 2025-10-11). Expected dates are counted
by hand from the State Council's 2025 arrangement."""

from __future__ import annotations

import datetime as dt

import pytest

from services.hotline.domain.sla import (
    ack_deadline,
    escalation_due,
    extend_deadline,
    resolve_deadline,
    resolve_limit_days,
    working_days_overdue,
)
from shared.workcalendar import CST


def cst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CST)


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        # Fri 09-26 + 3: Sun 09-28 (make-up), Mon 09-29, Tue 09-30.
        (cst(2025, 9, 26, 10), 3, cst(2025, 9, 30, 18)),
        # Tue 09-30 + 13: 10-09, 10-10, Sat 10-11 (make-up), 10-13 … 10-17, 10-20 … 10-24.
        (cst(2025, 9, 30, 10), 13, cst(2025, 10, 24, 18)),
        # Received during the holiday: counting starts on the first working day, 10-09.
        (cst(2025, 10, 3, 11), 3, cst(2025, 10, 13, 18)),
        # Emergency (same day) on the make-up Saturday is that Saturday.
        (cst(2025, 10, 11, 10), 0, cst(2025, 10, 11, 18)),
        # Emergency on a holiday: the first working day after it.
        (cst(2025, 10, 1, 9), 0, cst(2025, 10, 9, 18)),
        # After hours on Friday 10-10: the next working day is the make-up Saturday.
        (cst(2025, 10, 10, 19), 0, cst(2025, 10, 11, 18)),
        # An ordinary Saturday (09-27) is a day off; the make-up Sunday 09-28 is not.
        (cst(2025, 9, 27, 10), 0, cst(2025, 9, 28, 18)),
    ],
)
def test_resolve_deadline_counts_working_days(
    received: dt.datetime, days: int, due: dt.datetime
) -> None:
    assert resolve_deadline(received, days) == due


@pytest.mark.parametrize(
    ("dispatched", "due"),
    [
        # One office hour left on 09-30, then the holiday, then one hour on 10-09.
        (cst(2025, 9, 30, 17), cst(2025, 10, 9, 10)),
        # Dispatched on the day-off Saturday 09-27: counted from 09:00 on the make-up Sunday.
        (cst(2025, 9, 27, 10), cst(2025, 9, 28, 11)),
        # Friday 10-10 17:30: half an hour, then 90 minutes on the make-up Saturday.
        (cst(2025, 10, 10, 17, 30), cst(2025, 10, 11, 10, 30)),
        # Lunch break does not count.
        (cst(2025, 10, 13, 11), cst(2025, 10, 13, 14)),
    ],
)
def test_ack_deadline_counts_office_hours(dispatched: dt.datetime, due: dt.datetime) -> None:
    assert ack_deadline(dispatched, 2) == due


def test_extension_moves_the_deadline_over_the_holiday() -> None:
    # 09-29 + 3 working days: 09-30, 10-09, 10-10.
    assert extend_deadline(cst(2025, 9, 29, 18), 3) == cst(2025, 10, 10, 18)


def test_escalation_after_five_working_days_overdue_counts_the_make_up_saturday() -> None:
    due = cst(2025, 9, 30, 18)
    # 10-09, 10-10, 10-11 (Sat, working), 10-13, 10-14.
    assert escalation_due(due, 5) == cst(2025, 10, 14, 18)
    assert working_days_overdue(due, cst(2025, 10, 13, 19)) == 4
    assert working_days_overdue(due, cst(2025, 10, 14, 19)) == 5
    assert working_days_overdue(due, cst(2025, 10, 8, 12)) == 0  # holiday: nothing counted
    assert working_days_overdue(due, due) == 0


def test_matter_limit_overrides_the_kind_limit() -> None:
    limits = {"complaint": 13, "consultation": 3, "emergency": 0}
    assert resolve_limit_days("consultation", limits, {}) == 3
    assert resolve_limit_days("complaint", limits, {"complaint": 7}) == 7
    assert resolve_limit_days("suggestion", limits, {}) == 13  # unknown kind: complaint's
