"""Quiet hours as customers write them: "no messages after 9pm", "between 22:00 and 7:00"."""

from __future__ import annotations

from datetime import time

import pytest

from bot.proactive.policy import QuietHours
from bot.proactive.preferences import parse_quiet_hours

DEFAULT = QuietHours(time(21), time(8))


@pytest.mark.parametrize(
    ("message", "start", "end"),
    [
        ("no messages after 9pm", time(21), time(8)),
        ("no notifications after 11pm", time(23), time(8)),
        ("nothing after 8pm please", time(20), time(8)),
        ("don't ping me after 10 at night", time(22), time(8)),
        ("keep quiet after half past nine", time(21, 30), time(8)),
        ("no notifications after 9:30pm", time(21, 30), time(8)),
        ("can you hold off messaging me from 19:00 onwards", time(19), time(8)),
        ("update my quiet hours to start at 9pm", time(21), time(8)),
        ("don't send anything before 8 am", time(21), time(8)),
        ("no alerts before 7:30", time(21), time(7, 30)),
        ("quiet hours should end at 7am", time(21), time(7)),
        ("hold messages until 8am", time(21), time(8)),
        ("don't message me between 22:00 and 7:00", time(22), time(7)),
        ("quiet hours from 10pm to 8am", time(22), time(8)),
        ("quiet hours 11pm-7am", time(23), time(7)),
        ("change my quiet hours to 22:30 - 06:30", time(22, 30), time(6, 30)),
        ("do not disturb from midnight until 6am", time(0), time(6)),
        ("set my do not disturb time to 10.30pm until 7.30am", time(22, 30), time(7, 30)),
        ("I sleep from 11 pm to 7 am, don't message me then", time(23), time(7)),
        ("don't bother me between 12:00 and 13:00", time(12), time(13)),
        ("i work nights so no messages from 9 am to 5 pm", time(9), time(17)),
        ("only message me between 9am and 6pm", time(18), time(9)),
        ("please don't disturb me at night", time(21), time(8)),
    ],
)
def test_quiet_hours_from_what_customers_write(message: str, start: time, end: time) -> None:
    assert parse_quiet_hours(message, DEFAULT) == QuietHours(start, end)


@pytest.mark.parametrize("message", ["set quiet hours", "no messages at weekends", "quiet please"])
def test_no_time_of_day_means_ask(message: str) -> None:
    assert parse_quiet_hours(message, DEFAULT) is None
