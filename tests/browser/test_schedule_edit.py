"""A schedule edited in admin, in a real browser, reaches the beat that is running: the task runs
with its new arguments at its new interval, without a restart, and the edit is in the
schedule's audit under the staff user's name."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from playwright.sync_api import Page, expect

from tests.browser.pages import success_message
from tests.support.probe.models import ProbeExecution
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]


def _runs(marker: str) -> list[ProbeExecution]:
    return list(ProbeExecution.objects.filter(marker=marker).order_by("started_at"))


def test_a_schedule_edited_in_admin_reaches_the_running_beat(
    admin_page: Page, live_platform, staff_user, marker
):
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    schedule = PeriodicTask.objects.create(
        name=f"browser-probe-{marker}",
        task="probe.beat_tick",
        interval=hourly,
        kwargs=json.dumps({"marker": f"{marker}-before"}),
    )
    beat = live_platform.start_beat()  # loads the schedule: due in an hour (a new entry counts from now)

    admin_page.goto(live_platform.url("/admin/django_celery_beat/periodictask/"))
    admin_page.locator("#result_list").get_by_role("link", name=schedule.name).click()
    admin_page.locator("summary", has_text="Arguments").click()  # a collapsed fieldset
    admin_page.get_by_label("Keyword Arguments").fill(json.dumps({"marker": f"{marker}-after"}))
    admin_page.get_by_label("Interval Schedule").select_option(label=str(every_2s))
    admin_page.get_by_role("button", name="Save", exact=True).click()
    expect(success_message(admin_page)).to_contain_text("was changed successfully")

    wait_until(
        lambda: len(_runs(f"{marker}-after")) >= 3,
        timeout=30,
        what=lambda: f"three runs with the new arguments\n{beat.tail()}",
    )
    assert beat.proc.poll() is None  # the same beat process all along: never restarted
    assert not _runs(f"{marker}-before")  # the old arguments and interval are gone
    assert sum("beat: Starting" in line for line in beat.output) == 1
    after = _runs(f"{marker}-after")
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in zip(after, after[1:], strict=False)]
    assert all(gap >= 1.5 for gap in gaps), gaps  # every 2 s, as edited (not faster)

    # The edit is audited with who made it, on the schedule's own page.
    admin_page.locator("#result_list").get_by_role("link", name=schedule.name).click()
    history = admin_page.locator(".inline-group", has_text="Change history")
    expect(history).to_contain_text(staff_user.username)
    expect(history).to_contain_text("kwargs")
