"""Business hours of a support team: when a person can answer, and when they next will.

The admin writes them as JSON::

    {"timezone": "Europe/Paris",
     "weekly": {"mon": [["09:00", "12:30"], ["13:30", "18:00"]], "sat": [["10:00", "14:00"]]},
     "holidays": ["2026-12-25"]}

Times are wall-clock times in `timezone` (an IANA name, read with `zoneinfo`), so a team that
opens at 09:00 opens at 09:00 on both sides of a daylight-saving change. A range ends before it
starts the next day: "24:00" closes at midnight, and a night shift is two ranges on two days.
A weekday left out is closed; a holiday is closed all day. Pure code: `now` is always passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_MINUTES = 24 * 60
# Far enough to step over any list of holidays an admin would write, near enough to stay cheap.
_SEARCH_DAYS = 400

_LONG_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# "mon" and "monday" both name Monday (0).
_WEEKDAY_NAMES = {name: i for names in (WEEKDAYS, _LONG_NAMES) for i, name in enumerate(names)}

Range = tuple[int, int]  # minutes since local midnight: [start, end)


class HoursError(ValueError):
    """Business hours that cannot be used; `where` names the part, e.g. `weekly.mon[0]`."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def _minutes(value: object, where: str, *, end: bool) -> int:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise HoursError(where, f'{value!r} is not a time like "09:00"')
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > _DAY_MINUTES or (minutes == _DAY_MINUTES and not end):
        raise HoursError(where, f'{value!r} is out of range; use "00:00" to "24:00"')
    return minutes


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_day(day: str, ranges: object) -> tuple[Range, ...]:
    where = f"weekly.{day}"
    if not isinstance(ranges, list):
        raise HoursError(where, 'must be a list of ["HH:MM", "HH:MM"] ranges')
    parsed: list[Range] = []
    for i, pair in enumerate(ranges):
        here = f"{where}[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise HoursError(here, 'must be a ["HH:MM", "HH:MM"] pair (start, end)')
        start = _minutes(pair[0], here, end=False)
        stop = _minutes(pair[1], here, end=True)
        if stop <= start:
            raise HoursError(
                here,
                f"ends at {pair[1]} before it starts at {pair[0]}; a range past midnight is "
                'two ranges, one ending at "24:00" and one starting at "00:00" the next day',
            )
        parsed.append((start, stop))
    parsed.sort()
    for (_, first_end), (second_start, _) in pairwise(parsed):
        if second_start < first_end:
            raise HoursError(where, f"ranges overlap around {_clock(second_start)}")
    return tuple(parsed)


def _parse_zone(value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value.strip():
        raise HoursError("timezone", 'is required: an IANA time zone such as "Europe/Paris"')
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            "timezone", f'{value!r} is not an IANA time zone such as "Europe/Paris"'
        ) from None


def _parse_holidays(value: object) -> frozenset[date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise HoursError("holidays", 'must be a list of ISO dates like "2026-12-25"')
    days: set[date] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _ISO_DATE.match(item):
            raise HoursError(f"holidays[{i}]", f'{item!r} is not an ISO date like "2026-12-25"')
        try:
            days.add(date.fromisoformat(item))
        except ValueError:
            raise HoursError(f"holidays[{i}]", f"{item!r} is not a day of the calendar") from None
    return frozenset(days)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Weekly opening hours in one time zone, minus holidays."""

    zone: ZoneInfo
    weekly: Mapping[int, tuple[Range, ...]]  # Monday is 0, as in `date.weekday()`
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, data: object) -> BusinessHours:
        """Validate the admin's JSON; raise `HoursError` naming the first wrong part."""
        if not isinstance(data, Mapping):
            raise HoursError("business_hours", "must be an object with timezone, weekly, holidays")
        unknown = sorted(set(data) - {"timezone", "weekly", "holidays"})
        if unknown:
            raise HoursError(unknown[0], "unknown key; known: timezone, weekly, holidays")
        zone = _parse_zone(data.get("timezone"))
        weekly_raw = data.get("weekly")
        if not isinstance(weekly_raw, Mapping):
            raise HoursError("weekly", f"must map weekdays ({', '.join(WEEKDAYS)}) to ranges")
        weekly: dict[int, tuple[Range, ...]] = {}
        for day, ranges in weekly_raw.items():
            index = _WEEKDAY_NAMES.get(str(day).strip().lower())
            if index is None:
                raise HoursError(f"weekly.{day}", f"unknown weekday; use {', '.join(WEEKDAYS)}")
            if index in weekly:
                raise HoursError(f"weekly.{day}", "this weekday is given twice")
            weekly[index] = _parse_day(WEEKDAYS[index], ranges)
        if not any(weekly.values()):
            raise HoursError(
                "weekly", "no opening hours on any day; leave business_hours null to be always open"
            )
        return cls(zone=zone, weekly=weekly, holidays=_parse_holidays(data.get("holidays")))

    def to_json(self) -> dict[str, Any]:
        """Return the canonical JSON form (what the admin API stores and returns)."""
        return {
            "timezone": self.zone.key,
            "weekly": {
                WEEKDAYS[day]: [[_clock(a), _clock(b)] for a, b in ranges]
                for day, ranges in sorted(self.weekly.items())
                if ranges
            },
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }

    def _ranges_on(self, day: date) -> tuple[Range, ...]:
        if day in self.holidays:
            return ()
        return self.weekly.get(day.weekday(), ())

    def is_open(self, now: datetime) -> bool:
        """Return whether a person is at work at `now` (an aware datetime)."""
        local = _aware(now).astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < stop for start, stop in self._ranges_on(local.date()))

    def next_opening(self, now: datetime) -> datetime | None:
        """Return `now` when open, else the next opening in the business's zone.

        None only when no opening is found within about a year (holidays cover every day).
        """
        now = _aware(now)
        if self.is_open(now):
            return now.astimezone(self.zone)
        today = now.astimezone(self.zone).date()
        for offset in range(_SEARCH_DAYS):
            day = today + timedelta(days=offset)
            for start, _ in self._ranges_on(day):
                opening = _at(day, start, self.zone)
                if opening > now:
                    return opening
        return None

    def clock_start(self, moment: datetime) -> datetime:
        """Return when a timer started at `moment` begins to run: at once when open, else at
        the next opening (a user who wrote at night has not waited until the team is in)."""
        return self.next_opening(moment) or _aware(moment)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business hours need an aware datetime")
    return moment


def _at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
    # Through UTC and back: an opening inside a spring-forward gap lands on the first real
    # minute after it, with the right offset.
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
