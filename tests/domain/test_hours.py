"""Business hours as pure logic: open or closed, the next opening, and precise errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handoff.domain import BusinessHours, HoursError

PARIS = ZoneInfo("Europe/Paris")
OFFICE: dict[str, Any] = {
    "timezone": "Europe/Paris",
    "weekly": {
        "mon": [["09:00", "12:30"], ["13:30", "18:00"]],
        "tue": [["09:00", "18:00"]],
        "wed": [["09:00", "18:00"]],
        "thu": [["09:00", "18:00"]],
        "fri": [["09:00", "17:00"]],
    },
    "holidays": ["2026-12-25"],
}


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.fixture
def office() -> BusinessHours:
    return BusinessHours.parse(OFFICE)


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (paris(2026, 3, 2, 9, 0), True),  # Monday, opening minute
        (paris(2026, 3, 2, 12, 30), False),  # lunch: the end is exclusive
        (paris(2026, 3, 2, 13, 29), False),
        (paris(2026, 3, 2, 17, 59), True),
        (paris(2026, 3, 2, 18, 0), False),
        (paris(2026, 3, 7, 11, 0), False),  # Saturday
        (paris(2026, 12, 25, 10, 0), False),  # a Friday, but a holiday
        (datetime(2026, 3, 2, 8, 30, tzinfo=UTC), True),  # 09:30 in Paris
    ],
)
def test_is_open(office: BusinessHours, moment: datetime, is_open: bool) -> None:
    assert office.is_open(moment) is is_open


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (paris(2026, 3, 2, 10, 0), paris(2026, 3, 2, 10, 0)),  # open: now
        (paris(2026, 3, 2, 7, 0), paris(2026, 3, 2, 9, 0)),  # before opening, same day
        (paris(2026, 3, 2, 12, 45), paris(2026, 3, 2, 13, 30)),  # lunch break
        (paris(2026, 3, 6, 17, 0), paris(2026, 3, 9, 9, 0)),  # Friday evening → Monday
        (paris(2026, 12, 24, 19, 0), paris(2026, 12, 28, 9, 0)),  # over Christmas and a weekend
    ],
)
def test_next_opening(office: BusinessHours, moment: datetime, opening: datetime) -> None:
    found = office.next_opening(moment)
    assert found == opening
    assert found is not None and found.tzinfo == PARIS


def test_wall_clock_hours_hold_across_daylight_saving(office: BusinessHours) -> None:
    # Paris moves from UTC+1 to UTC+2 on Sunday 29 March 2026: 09:00 stays 09:00 locally.
    before = office.next_opening(paris(2026, 3, 27, 18, 0))
    assert before is not None and before.astimezone(UTC).hour == 7
    assert office.is_open(datetime(2026, 3, 30, 7, 0, tzinfo=UTC))  # 09:00 CEST
    assert not office.is_open(datetime(2026, 3, 27, 7, 30, tzinfo=UTC))  # 08:30 CET


def test_an_opening_inside_a_spring_forward_gap_is_the_first_real_minute() -> None:
    hours = BusinessHours.parse(
        {"timezone": "Europe/Paris", "weekly": {"sun": [["02:30", "05:00"]]}}
    )
    opening = hours.next_opening(paris(2026, 3, 28, 12, 0))
    assert opening is not None
    assert opening.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_midnight_ranges_and_long_names() -> None:
    hours = BusinessHours.parse(
        {"timezone": "UTC", "weekly": {"Friday": [["20:00", "24:00"]], "sat": [["00:00", "02:00"]]}}
    )
    assert hours.is_open(datetime(2026, 3, 6, 23, 59, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 3, 7, 1, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 3, 7, 2, 0, tzinfo=UTC))
    assert hours.to_json()["weekly"] == {"fri": [["20:00", "24:00"]], "sat": [["00:00", "02:00"]]}


def test_canonical_json_round_trips(office: BusinessHours) -> None:
    assert BusinessHours.parse(office.to_json()) == office
    assert office.to_json()["holidays"] == ["2026-12-25"]


def test_no_opening_within_the_search_window_is_none() -> None:
    hours = BusinessHours.parse(
        {"timezone": "UTC", "weekly": {"mon": [["09:00", "10:00"]]}, "holidays": []}
    )
    # Every Monday of the next 400 days a holiday: nothing to promise.
    mondays = [date.fromordinal(date(2026, 3, 2).toordinal() + 7 * i) for i in range(60)]
    closed = BusinessHours(hours.zone, hours.weekly, frozenset(mondays))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert closed.next_opening(now) is None
    assert closed.clock_start(now) == now


def test_clock_start_waits_for_the_opening(office: BusinessHours) -> None:
    assert office.clock_start(paris(2026, 3, 2, 7, 0)) == paris(2026, 3, 2, 9, 0)
    assert office.clock_start(paris(2026, 3, 2, 10, 0)) == paris(2026, 3, 2, 10, 0)


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        ("9 to 5", "business_hours", "must be an object"),
        ({"weekly": {"mon": [["09:00", "17:00"]]}}, "timezone", "is required"),
        ({**OFFICE, "timezone": "Mars/Olympus"}, "timezone", "not an IANA time zone"),
        ({**OFFICE, "timezone": "../etc/passwd"}, "timezone", "not an IANA time zone"),
        ({**OFFICE, "weekly": {"mon": [["17:00", "09:00"]]}}, "weekly.mon[0]", "before it starts"),
        ({**OFFICE, "weekly": {"mon": [["09:00", "09:00"]]}}, "weekly.mon[0]", "before it starts"),
        ({**OFFICE, "weekly": {"mon": [["9am", "17:00"]]}}, "weekly.mon[0]", "not a time"),
        ({**OFFICE, "weekly": {"mon": [["09:00", "25:00"]]}}, "weekly.mon[0]", "not a time"),
        ({**OFFICE, "weekly": {"mon": [["24:00", "24:00"]]}}, "weekly.mon[0]", "out of range"),
        ({**OFFICE, "weekly": {"mon": [["09:00"]]}}, "weekly.mon[0]", "pair"),
        ({**OFFICE, "weekly": {"mon": "09:00-17:00"}}, "weekly.mon", "must be a list"),
        (
            {**OFFICE, "weekly": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}},
            "weekly.mon",
            "overlap",
        ),
        (
            {**OFFICE, "weekly": {"funday": [["09:00", "17:00"]]}},
            "weekly.funday",
            "unknown weekday",
        ),
        (
            {**OFFICE, "weekly": {"mon": [["09:00", "17:00"]], "Monday": []}},
            "weekly.Monday",
            "given twice",
        ),
        ({**OFFICE, "weekly": {"mon": []}}, "weekly", "no opening hours"),
        ({**OFFICE, "weekly": None}, "weekly", "must map weekdays"),
        ({**OFFICE, "holidays": ["25/12/2026"]}, "holidays[0]", "ISO date"),
        ({**OFFICE, "holidays": ["2026-02-30"]}, "holidays[0]", "not a day"),
        ({**OFFICE, "holidays": "2026-12-25"}, "holidays", "must be a list"),
        ({**OFFICE, "hours": {}}, "hours", "unknown key"),
    ],
)
def test_bad_hours_name_the_wrong_part(data: Any, where: str, words: str) -> None:
    with pytest.raises(HoursError) as raised:
        BusinessHours.parse(data)
    assert raised.value.where == where
    assert words in raised.value.problem


def test_naive_datetimes_are_refused(office: BusinessHours) -> None:
    with pytest.raises(ValueError, match="aware"):
        office.is_open(datetime(2026, 3, 2, 10, 0))
