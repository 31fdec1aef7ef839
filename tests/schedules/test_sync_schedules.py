"""sync_schedules: creates the defaults, keeps operators' edits, --reset restores one, all audited."""

from __future__ import annotations

import dataclasses
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from beat_schedules.defaults import DEFAULT_SCHEDULES, DEFAULTS_BY_NAME, Cron
from jobs.schedules.models import ScheduleChange
from jobs.schedules.sync import sync_schedules
from tests.schedules.helpers import periodic_task_form

pytestmark = pytest.mark.django_db

CONTRACT_SCHEDULES = {
    # name: (task, "minute hour day_of_month month_of_year day_of_week")
    "update-exchange-rates-daily": ("tasks.fx.update_exchange_rates", "30 0 * * *"),
    "check-stalled-deals-daily": ("tasks.deals.check_stalled_deals", "0 9 * * *"),
    "send-shipment-updates": ("tasks.shipments.send_shipment_updates", "0 */6 * * *"),
    "process-pending-commissions": ("tasks.commissions.process_pending_commissions", "0 10 * * 1"),
    "cleanup-old-audit-logs": ("tasks.maintenance.cleanup_old_audit_logs", "0 2 1 * *"),
    "send-payment-reminders-daily": ("tasks.payments.send_payment_reminders", "0 10 * * *"),
    "check-delayed-shipments": ("tasks.shipments.check_delayed_shipments", "0 8 * * *"),
    "process-pending-payments": ("tasks.payments.process_pending_payments", "*/15 * * * *"),
    "refresh-dealer-performance": ("tasks.reports.refresh_dealer_performance", "*/30 * * * *"),
    "refresh-analytics-dashboard": ("tasks.reports.refresh_analytics_dashboard", "*/15 * * * *"),
    "relay-outbox": ("tasks.maintenance.relay_outbox", "* * * * *"),
    "sample-queue-depths": ("tasks.maintenance.sample_queue_depths", "* * * * *"),
    "prune-job-records": ("tasks.maintenance.prune_job_records", "30 3 * * *"),
    "celery.backend_cleanup": ("celery.backend_cleanup", "0 4 * * *"),
}


def run_sync(*args: str) -> str:
    out = StringIO()
    call_command("sync_schedules", *args, stdout=out)
    return out.getvalue()


def cron_of(task: PeriodicTask) -> str:
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"


def test_creates_the_contract_schedules_as_crontabs_in_time_zone(settings):
    output = run_sync()

    tasks = {t.name: t for t in PeriodicTask.objects.select_related("crontab")}
    assert {name: (t.task, cron_of(t)) for name, t in tasks.items()} == CONTRACT_SCHEDULES
    assert {str(t.crontab.timezone) for t in tasks.values()} == {settings.TIME_ZONE}
    assert all(t.enabled and json.loads(t.kwargs) == {} for t in tasks.values())
    assert output.count("created") >= len(CONTRACT_SCHEDULES)
    assert f"sync_schedules: {len(DEFAULT_SCHEDULES)} created" in output


def test_a_second_run_changes_nothing():
    run_sync()
    before = list(PeriodicTask.objects.order_by("id").values())

    output = run_sync()

    assert list(PeriodicTask.objects.order_by("id").values()) == before
    assert f"sync_schedules: {len(DEFAULT_SCHEDULES)} unchanged" in output


def test_an_operators_edit_in_admin_survives_sync_and_is_audited(admin_client, admin_user):
    run_sync()
    task = PeriodicTask.objects.get(name="check-stalled-deals-daily")
    ten_am = CrontabSchedule.objects.create(minute="0", hour="10", timezone="America/Toronto")

    response = admin_client.post(
        f"/admin/django_celery_beat/periodictask/{task.pk}/change/",
        periodic_task_form(task, crontab=ten_am.pk, kwargs='{"threshold_days": 3}'),
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    output = run_sync()

    task.refresh_from_db()
    assert (cron_of(task), json.loads(task.kwargs)) == ("0 10 * * *", {"threshold_days": 3})
    assert "kept-edited  check-stalled-deals-daily" in output
    edit = ScheduleChange.objects.get(schedule_name=task.name, source="admin")
    assert (edit.actor, edit.user, edit.action) == (admin_user.username, admin_user, "updated")
    assert edit.changes == {
        "schedule": ["crontab 0 9 * * * America/Toronto", "crontab 0 10 * * * America/Toronto"],
        "kwargs": [{}, {"threshold_days": 3}],
    }
    assert edit.periodic_task == task


def test_reset_restores_the_default_in_place_and_is_audited(admin_client):
    run_sync()
    task = PeriodicTask.objects.get(name="send-payment-reminders-daily")
    ran_at = timezone.now().replace(microsecond=0)
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=ran_at, total_run_count=7)
    response = admin_client.post(
        f"/admin/django_celery_beat/periodictask/{task.pk}/change/",
        periodic_task_form(task, enabled=False),
    )
    assert response.status_code == 302
    run_sync()
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False  # kept

    output = run_sync("--reset", "send-payment-reminders-daily")

    task = PeriodicTask.objects.get(name="send-payment-reminders-daily")
    assert task.enabled is True and cron_of(task) == "0 10 * * *"
    assert "reset        send-payment-reminders-daily  (changed: enabled)" in output
    # Updated in place: same row, run history kept (the admin disable cleared last_run_at,
    # as django-celery-beat does for a disabled task; the count survives).
    assert task.total_run_count == 7
    trail = list(ScheduleChange.objects.filter(schedule_name=task.name).order_by("id"))
    assert [(c.source, c.action, c.changes.get("enabled")) for c in trail] == [
        ("sync_schedules", "created", [None, True]),
        ("admin", "updated", [True, False]),
        ("sync_schedules", "reset", [False, True]),
    ]
    assert trail[-1].actor == "sync_schedules" and trail[-1].periodic_task_id == task.pk


def test_reset_keeps_last_run_and_row_identity():
    run_sync()
    task = PeriodicTask.objects.get(name="check-delayed-shipments")
    ran_at = timezone.now().replace(microsecond=0)
    PeriodicTask.objects.filter(pk=task.pk).update(kwargs='{"x": 1}', last_run_at=ran_at)

    run_sync("--reset", "check-delayed-shipments")

    after = PeriodicTask.objects.get(name="check-delayed-shipments")
    assert (after.pk, after.last_run_at, after.kwargs) == (task.pk, ran_at, "{}")


def test_a_changed_default_updates_schedules_nobody_edited_and_keeps_edited_ones():
    sync_schedules()
    edited = PeriodicTask.objects.get(name="check-delayed-shipments")
    edited.kwargs = '{"grace_hours": 6}'
    edited.save()
    # A later release moves both defaults to new times.
    new_defaults = [
        dataclasses.replace(d, when=Cron(minute="0", hour="7"))
        if d.name in ("check-delayed-shipments", "check-stalled-deals-daily")
        else d
        for d in DEFAULT_SCHEDULES
    ]

    outcomes = {o.name: o.outcome for o in sync_schedules(defaults=new_defaults)}

    assert outcomes["check-stalled-deals-daily"] == "updated"
    assert outcomes["check-delayed-shipments"] == "kept-edited"
    assert cron_of(PeriodicTask.objects.get(name="check-stalled-deals-daily")) == "0 7 * * *"
    assert cron_of(PeriodicTask.objects.get(name="check-delayed-shipments")) == "0 8 * * *"
    # Applying the new default never edits a crontab row other schedules may share.
    assert CrontabSchedule.objects.filter(minute="0", hour="9").exists()


def test_a_schedule_made_by_hand_before_any_sync_is_treated_as_edited():
    cron = CrontabSchedule.objects.create(minute="15", hour="3", timezone="UTC")
    PeriodicTask.objects.create(
        name="cleanup-old-audit-logs", task="tasks.maintenance.cleanup_old_audit_logs", crontab=cron
    )

    output = run_sync()

    assert "kept-edited  cleanup-old-audit-logs" in output
    assert cron_of(PeriodicTask.objects.get(name="cleanup-old-audit-logs")) == "15 3 * * *"


def test_reset_of_an_unknown_name_fails_naming_it():
    with pytest.raises(CommandError, match="'no-such-schedule'"):
        run_sync("--reset", "no-such-schedule")
    assert not PeriodicTask.objects.exists()


def test_every_default_is_declared_once_with_a_description():
    assert len(DEFAULTS_BY_NAME) == len(DEFAULT_SCHEDULES)
    assert all(d.description for d in DEFAULT_SCHEDULES)
