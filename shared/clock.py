"""Injectable clocks: services read time only through a Clock so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, replays)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def utc(dt: datetime) -> datetime:
    """Normalise naive datetimes (MongoDB returns them naive) to aware UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_instant(value: datetime) -> datetime:
    """A time the platform can store and compute with: 1900–2199 in UTC.

    Input from outside may name any time pydantic can parse; near year 1 or 9999 an offset
    makes the conversion to UTC overflow, in storage or in deadline arithmetic, long after
    validation. Refusing it here makes it a clear 4xx or a quarantined event.
    """
    try:
        instant = utc(value)
    except OverflowError as exc:
        raise ValueError("time out of range (years 1900–2199)") from exc
    if not EARLIEST <= instant < LATEST:
        raise ValueError("time out of range (years 1900–2199)")
    return value


Instant = Annotated[datetime, AfterValidator(check_instant)]
"""A datetime from outside the platform, checked by ``check_instant``."""
