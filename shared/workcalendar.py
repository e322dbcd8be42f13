"""Working-day arithmetic (工作日) with Chinese public holidays and make-up days (调休).

Deadlines in 12345 handling and in filing rules count working days or working hours;
the deadlines the bureaus set in calendar days (整改期限, 回复期限) end at midnight CST.
``chinese-calendar`` knows the State Council's holiday arrangements, including the Saturdays
and Sundays that are working days (调休上班). Office hours are 09:00–12:00 and 13:00–18:00
in China Standard Time by default.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import chinese_calendar

CST = ZoneInfo("Asia/Shanghai")


def end_of_day_after(when: dt.datetime, days: int) -> dt.datetime:
    """Close of the CST day ``days`` calendar days after ``when``, in UTC.

    "30 days to rectify" from a notice sent on 5 May (CST) ends when 4 June (CST) ends,
    whatever the hour of the notice; the instant is kept in UTC like every stored time.
    """
    day = when.astimezone(CST).date() + dt.timedelta(days=days + 1)
    return dt.datetime.combine(day, dt.time(0), CST).astimezone(dt.UTC)


@functools.lru_cache(maxsize=4096)
def is_working_day(day: dt.date) -> bool:
    """法定工作日 (adjusted weekends included, holidays excluded); cached: SLA arithmetic
    asks for the same few weeks of days for every complaint."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # outside the library's years: plain Mon–Fri
        return day.weekday() < 5


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The date ``days`` working days after ``start`` (``start`` itself not counted)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    day = start
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days in (start, end]; negative when end is before start."""
    if end < start:
        return -working_days_between(end, start)
    count = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


@dataclass(frozen=True)
class OfficeHours:
    """The hours of a working day that count towards hour-based limits."""

    morning: tuple[dt.time, dt.time] = (dt.time(9), dt.time(12))
    afternoon: tuple[dt.time, dt.time] = (dt.time(13), dt.time(18))
    tz: dt.tzinfo = CST

    def periods(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not is_working_day(day):
            return []
        return [
            (dt.datetime.combine(day, a, self.tz), dt.datetime.combine(day, b, self.tz))
            for a, b in (self.morning, self.afternoon)
        ]

    def add_working_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The instant ``hours`` office hours after ``start`` (timezone-aware in and out)."""
        left = dt.timedelta(hours=hours)
        local = start.astimezone(self.tz)
        day = local.date()
        for _ in range(3660):
            for begin, end in self.periods(day):
                if local >= end:
                    continue
                begin = max(begin, local)
                span = end - begin
                if span >= left:
                    return (begin + left).astimezone(start.tzinfo or dt.UTC)
                left -= span
            day += dt.timedelta(days=1)
        raise ValueError("working hours beyond ten years")

    def end_of_working_day(self, when: dt.datetime, days_after: int = 0) -> dt.datetime:
        """Close of business ``days_after`` working days after ``when``'s day (0: same day,
        or the next working day when ``when`` falls on a day off)."""
        local = when.astimezone(self.tz).date()
        while not is_working_day(local):
            local += dt.timedelta(days=1)
        target = add_working_days(local, days_after)
        return dt.datetime.combine(target, self.afternoon[1], self.tz).astimezone(
            when.tzinfo or dt.UTC
        )
