"""Schedules in admin: run now through the platform's queues, audited actions, the audit panel."""

from __future__ import annotations

import json

import pytest
from celery import signals
from celery.states import READY_STATES
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks
from django_celery_results.models import TaskResult

from beat_schedules.defaults import DEFAULT_SCHEDULES
from jobs.schedules.models import ScheduleChange
from tests.support.probe.models import ProbeExecution
from tests.support.processes import wait_until

CHANGELIST = "/admin/django_celery_beat/periodictask/"

EXPECTED_QUEUE = {
    "tasks.fx.update_exchange_rates": "default",
    "tasks.deals.check_stalled_deals": "default",
    "tasks.shipments.send_shipment_updates": "default",
    "tasks.commissions.process_pending_commissions": "default",
    "tasks.maintenance.cleanup_old_audit_logs": "maintenance",
    "tasks.payments.send_payment_reminders": "payments",
    "tasks.shipments.check_delayed_shipments": "default",
    "tasks.payments.process_pending_payments": "payments",
    "tasks.reports.refresh_dealer_performance": "reports",
    "tasks.reports.refresh_analytics_dashboard": "reports",
    "tasks.maintenance.relay_outbox": "maintenance",
    "tasks.maintenance.sample_queue_depths": "maintenance",
    "tasks.maintenance.prune_job_records": "maintenance",
    "celery.backend_cleanup": "maintenance",
}


@pytest.fixture
def published():
    """Every message the platform's app publishes during the test: (task, routing key, headers)."""
    seen: list[tuple[str, str, dict]] = []

    def receiver(sender=None, headers=None, routing_key=None, **_kwargs):
        seen.append((headers["task"], routing_key, headers))

    signals.after_task_publish.connect(receiver, weak=False)
    yield seen
    signals.after_task_publish.disconnect(receiver)


def run_now(client, *tasks: PeriodicTask):
    return client.post(
        CHANGELIST, {"action": "run_tasks", "_selected_action": [t.pk for t in tasks]}, follow=True
    )


@pytest.mark.django_db(transaction=True)
def test_run_now_runs_every_default_schedule_through_its_queue(admin_client, published, live_worker):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    tasks = list(PeriodicTask.objects.all())

    response = run_now(admin_client, *tasks)

    assert response.status_code == 200
    assert "Not a task of this codebase" not in response.content.decode()
    sent = {name: (queue, headers) for name, queue, headers in published}
    assert {name: queue for name, (queue, _) in sent.items()} == EXPECTED_QUEUE
    assert {headers["periodic_task_name"] for _, headers in sent.values()} == {
        d.name for d in DEFAULT_SCHEDULES
    }
    # The schedule's expiry travels with the message, as beat sends it.
    assert sent["tasks.payments.process_pending_payments"][1]["expires"] is not None
    runs = ScheduleChange.objects.filter(action="ran_now", actor="admin")
    job_ids = {r.changes["job_id"] for r in runs}
    assert job_ids == {headers["id"] for _, headers in sent.values()}
    # And a worker ran each of them (on an empty database: every sweep finds nothing to do).
    wait_until(
        lambda: (
            TaskResult.objects.filter(task_id__in=job_ids, status__in=READY_STATES).count() == len(job_ids)
        ),
        timeout=60,
        what="every run-now job to finish",
    )
    outcomes = dict(TaskResult.objects.filter(task_id__in=job_ids).values_list("task_name", "status"))
    assert outcomes == {name: "SUCCESS" for name in EXPECTED_QUEUE}


@pytest.mark.django_db(transaction=True)
def test_run_now_is_executed_by_a_worker(admin_client, live_worker, marker):
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    task = PeriodicTask.objects.create(
        name=f"probe-{marker}",
        task="probe.beat_tick",
        interval=every_hour,
        kwargs=json.dumps({"marker": marker}),
    )

    run_now(admin_client, task)

    wait_until(
        lambda: ProbeExecution.objects.filter(marker=marker, finished_at__isnull=False).exists(),
        timeout=20,
        what="the run-now job to execute",
    )
    assert ProbeExecution.objects.filter(marker=marker).count() == 1


@pytest.mark.django_db
def test_enable_disable_actions_are_audited_and_signal_beat(admin_client):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    tasks = list(PeriodicTask.objects.filter(name__startswith="check-"))

    before = PeriodicTasks.last_change()

    admin_client.post(CHANGELIST, {"action": "disable_tasks", "_selected_action": [t.pk for t in tasks]})

    assert not PeriodicTask.objects.filter(name__startswith="check-", enabled=True).exists()
    assert PeriodicTasks.last_change() > before
    audit = ScheduleChange.objects.filter(source="admin", action="updated")
    assert sorted(c.schedule_name for c in audit) == sorted(t.name for t in tasks)
    assert all(c.changes == {"enabled": [True, False]} and c.actor == "admin" for c in audit)


@pytest.mark.django_db
def test_a_crontab_edit_is_audited_on_every_task_that_uses_it(admin_client):
    cron = CrontabSchedule.objects.create(minute="0", hour="6", timezone="America/Toronto")
    one = PeriodicTask.objects.create(name="one", task="probe.beat_tick", crontab=cron)
    two = PeriodicTask.objects.create(name="two", task="probe.beat_tick", crontab=cron)

    response = admin_client.post(
        f"/admin/django_celery_beat/crontabschedule/{cron.pk}/change/",
        {
            "minute": "30",
            "hour": "6",
            "day_of_month": "*",
            "month_of_year": "*",
            "day_of_week": "*",
            "timezone": "America/Toronto",
            "periodictask_set-TOTAL_FORMS": "2",
            "periodictask_set-INITIAL_FORMS": "2",
            "periodictask_set-MIN_NUM_FORMS": "0",
            "periodictask_set-MAX_NUM_FORMS": "0",
            "periodictask_set-0-id": one.pk,
            "periodictask_set-1-id": two.pk,
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    changes = {c.schedule_name: c.changes for c in ScheduleChange.objects.all()}
    expected = {"schedule": ["crontab 0 6 * * * America/Toronto", "crontab 30 6 * * * America/Toronto"]}
    assert changes == {"one": expected, "two": expected}


@pytest.mark.django_db
def test_the_audit_is_shown_on_the_schedule_page(admin_client):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    task = PeriodicTask.objects.get(name="process-pending-payments")
    admin_client.post(CHANGELIST, {"action": "disable_tasks", "_selected_action": [task.pk]})

    page = admin_client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()

    assert "Change history (schedule audit)" in page
    assert "sync_schedules" in page and "created" in page
    assert "<b>enabled</b>: true &rarr; false" in page


@pytest.mark.django_db
def test_deleting_a_schedule_keeps_its_audit(admin_client):
    call_command("sync_schedules", stdout=open("/dev/null", "w"))
    task = PeriodicTask.objects.get(name="send-shipment-updates")

    admin_client.post(f"{CHANGELIST}{task.pk}/delete/", {"post": "yes"})

    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    trail = ScheduleChange.objects.filter(schedule_name="send-shipment-updates").order_by("id")
    assert [c.action for c in trail] == ["created", "deleted"]
    assert trail.last().changes["task"] == ["tasks.shipments.send_shipment_updates", None]


@pytest.mark.django_db
def test_deleting_a_crontab_audits_the_tasks_it_takes_with_it(admin_client):
    cron = CrontabSchedule.objects.create(minute="0", hour="6", timezone="America/Toronto")
    PeriodicTask.objects.create(name="uses-it", task="probe.beat_tick", crontab=cron)

    admin_client.post(f"/admin/django_celery_beat/crontabschedule/{cron.pk}/delete/", {"post": "yes"})

    assert not PeriodicTask.objects.filter(name="uses-it").exists()
    deleted = ScheduleChange.objects.get(schedule_name="uses-it")
    assert (deleted.action, deleted.actor) == ("deleted", "admin")
