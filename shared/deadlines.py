"""Deadlines the bureaus set in calendar days: they end at midnight China Standard Time.

"30 days to rectify" from a notice sent on 5 May (CST) ends when 4 June (CST) ends, whatever
the hour of the notice; the instant is kept in UTC like every stored time.
"""

from __future__ import annotations

import datetime as dt

from shared.workcalendar import CST


def end_of_day_after(when: dt.datetime, days: int) -> dt.datetime:
    """Close of the CST day ``days`` calendar days after ``when``, in UTC."""
    day = when.astimezone(CST).date() + dt.timedelta(days=days + 1)
    return dt.datetime.combine(day, dt.time(0), CST).astimezone(dt.UTC)
