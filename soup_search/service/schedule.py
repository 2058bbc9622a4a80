"""A watch's schedule: a cron expression (croniter), a fixed interval, or none (manual triggers only)."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter


def problems(schedule: dict) -> list[str]:
    """What is wrong with a schedule ``{"cron": expr}`` | ``{"interval_s": n}`` | ``{}``, in one line each."""
    keys = set(schedule) - {"cron", "interval_s"}
    if keys:
        return [f"'schedule': unknown key {sorted(keys)[0]!r}; give cron: '<expr>' or interval_s: <seconds>"]
    if "cron" in schedule and "interval_s" in schedule:
        return ["'schedule': give cron or interval_s, not both"]
    if "cron" in schedule and not (isinstance(schedule["cron"], str) and croniter.is_valid(schedule["cron"])):
        return [f"'schedule.cron': {schedule['cron']!r} is not a cron expression; "
                "use five fields, e.g. '0 3 * * *' (03:00 daily)"]
    if "interval_s" in schedule:
        value = schedule["interval_s"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
            return [f"'schedule.interval_s': {value!r} is not a number of seconds >= 1"]
    return []


def next_after(schedule: dict, moment: datetime) -> datetime | None:
    """The first due time strictly after ``moment`` (None: manual triggers only)."""
    if "cron" in schedule:
        return croniter(schedule["cron"], moment).get_next(datetime)
    if "interval_s" in schedule:
        return moment + timedelta(seconds=float(schedule["interval_s"]))
    return None
