"""The Content-Security-Policy in a real browser (docs/security.md): every page ops staff reach
carries it and breaks none of it. One walk, logged in through admin's login form: each admin
changelist, add page and change page (one row of every model admin registers), the operations
dashboard, a bulk send's batch page while it polls, the market analytics page, the API's docs
(Swagger UI from our own static files), two 404 pages and the logged-out page. Every response
from the platform carries the header, nothing is fetched from another origin, and the browser
reports no violation: neither a `securitypolicyviolation` event nor a console message.

And the policy at work: a script injected into a page is refused, and its report reaches our
endpoint, which logs it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Model
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_celery_results.models import GroupResult, TaskResult
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from http_api.keys import create_api_key
from http_api.models import AcceptedJob, WebhookEvent
from jobs.models import DeadLetter, Effect, OutboxMessage
from jobs.schedules.models import ScheduleChange
from jobs.task_names import TaskName
from tests import factories as f
from tests.browser.pages import log_in, open_dashboard
from tests.browser.policy_watch import watch
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["redis"], indirect=True),
]


def _periodic_task() -> PeriodicTask:
    # With a crontab: its page shows the crontab in words (operations/periodic_task_form.js).
    crontab = CrontabSchedule.objects.create(minute="30", hour="0")
    return PeriodicTask.objects.create(name="csp-walk", task=TaskName.NOOP, crontab=crontab)


def _dead_letter() -> DeadLetter:
    now = timezone.now()
    return DeadLetter.objects.create(
        task_id=str(uuid.uuid4()),
        task_name=TaskName.NOOP,
        kwargs={},
        exception_type="PermanentError",
        exception_message="refused",
        traceback="Traceback (most recent call last):\n  ...\nPermanentError: refused",
        first_failed_at=now,
        last_failed_at=now,
    )


def _accepted_job() -> AcceptedJob:
    key, _secret = create_api_key(name=f"csp-walk-{f.next_id()}")
    return AcceptedJob.objects.create(task_name=TaskName.NOOP, api_key=key)


# One row for the change page of every model admin registers; None: a row the walk already has
# (the staff user). A model admin added without an entry here fails the walk, by name.
ONE_ROW: dict[str, Callable[[], Model | None]] = {
    "auth.group": lambda: Group.objects.create(name="ops"),
    "auth.user": lambda: None,
    "django_celery_beat.clockedschedule": lambda: ClockedSchedule.objects.create(clocked_time=timezone.now()),
    "django_celery_beat.solarschedule": lambda: SolarSchedule.objects.create(
        event="sunrise", latitude=45.5, longitude=-73.6
    ),
    "django_celery_beat.periodictask": _periodic_task,
    "django_celery_beat.crontabschedule": lambda: CrontabSchedule.objects.create(minute="0", hour="9"),
    "django_celery_beat.intervalschedule": lambda: IntervalSchedule.objects.create(
        every=15, period="minutes"
    ),
    "django_celery_results.taskresult": lambda: TaskResult.objects.create(
        task_id=str(uuid.uuid4()), task_name=TaskName.NOOP, status="SUCCESS", date_done=timezone.now()
    ),
    "django_celery_results.groupresult": lambda: GroupResult.objects.create(group_id=str(uuid.uuid4())),
    "schedules.schedulechange": lambda: ScheduleChange.objects.create(
        schedule_name="csp-walk", actor="test", source="admin", action="updated", changes={}
    ),
    "jobs.deadletter": _dead_letter,
    "jobs.effect": lambda: Effect.objects.create(job_id=str(uuid.uuid4()), key="csp-walk"),
    "jobs.outboxmessage": lambda: OutboxMessage.objects.create(task_name=TaskName.NOOP),
    "audit.auditlog": f.make_audit_log,
    "marketplace.profile": f.make_buyer,
    "marketplace.vehicle": f.make_vehicle,
    "marketplace.offer": f.make_offer,
    "marketplace.lead": f.make_lead,
    "marketplace.deal": f.make_deal,
    "marketplace.commission": f.make_commission,
    "billing.invoice": f.make_invoice,
    "billing.paymentattempt": f.make_payment_attempt,
    "billing.exchangerate": f.make_exchange_rate,
    "logistics.shipment": f.make_shipment,
    "logistics.shipmentevent": f.make_shipment_event,
    "messaging.whatsappmessage": f.make_whatsapp_message,
    # Running, with rows queued: its page (the batch page) polls its progress while it is open.
    "messaging.bulkbatch": f.make_bulk_batch,
    "reports.vehiclehistoryreport": f.make_vehicle_history_report,
    "reports.dashboardsnapshot": f.make_dashboard_snapshot,
    "http_api.apikey": lambda: create_api_key(name=f"csp-walk-{f.next_id()}")[0],
    "axes.accessattempt": lambda: AccessAttempt.objects.create(
        username="guesser",
        ip_address="203.0.113.9",
        user_agent="csp-walk",
        http_accept="*/*",
        path_info="/admin/login/",
        get_data="",
        post_data="",
        failures_since_start=1,
    ),
    "axes.accesslog": lambda: AccessLog.objects.create(
        username="guesser",
        ip_address="203.0.113.9",
        user_agent="csp-walk",
        http_accept="*/*",
        path_info="/admin/login/",
    ),
    "otp_static.staticdevice": lambda: StaticDevice.objects.create(user=f.make_user(), name="backup codes"),
    "otp_totp.totpdevice": lambda: TOTPDevice.objects.create(user=f.make_user(), name="authenticator"),
    "http_api.acceptedjob": _accepted_job,
    "http_api.webhookevent": lambda: WebhookEvent.objects.create(
        provider="stripe", event_id=f"evt_csp{f.next_id()}", event_type="payment_intent.succeeded"
    ),
}


def test_every_page_carries_the_policy_fetches_only_from_us_and_breaks_none_of_it(
    page: Page, live_platform, staff_user
):
    registered = {model._meta.label_lower: model for model in admin.site._registry}
    assert set(registered) == set(ONE_ROW), (
        "the walk needs a row for each model admin: add these to ONE_ROW, drop the others: "
        f"{sorted(set(registered) ^ set(ONE_ROW))}"
    )
    for build in ONE_ROW.values():
        build()
    seen = watch(page, live_platform.url(""))

    log_in(page, live_platform, staff_user)  # the login page, then the admin index
    as_staff = RequestFactory().get("/admin/")
    as_staff.user = get_user_model().objects.get(username=staff_user.username)
    for label, model in sorted(registered.items()):
        opts = model._meta
        model_admin = admin.site._registry[model]
        seen.visit(live_platform.url(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")))
        if model_admin.has_add_permission(as_staff):
            seen.visit(live_platform.url(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")))
        row = model.objects.order_by("pk").first()
        assert row is not None, f"{label}: no row to open its change page"
        change = live_platform.url(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
        if label == "messaging.bulkbatch":
            # The batch page: its script (a static file) polls the batch's progress.
            seen.visit(change)
            try:  # its first poll comes a second after the page loaded
                with page.expect_response(lambda r: r.url.endswith("/progress.json")) as first_poll:
                    pass
                poll = first_poll.value
            except PlaywrightTimeoutError:
                poll = None
            assert (seen.violations, seen.console) == ([], []), "the batch page broke the policy"
            assert poll is not None and poll.status == 200, "the batch page never polled its progress"
        else:
            seen.visit(change)

    open_dashboard(page, live_platform)
    seen.visit(live_platform.url(reverse("admin:reports_market_dashboard")))

    # The API's docs: Swagger UI from /static/ninja/, its init script a file, the document it
    # reads fetched from us; rendered means every operation is listed.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/openapi.json")):
        seen.visit(live_platform.url("/api/v1/docs"))
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui .opblock-summary-path", has_text="/api/v1/jobs").first).to_be_visible()
    assert page.locator("script[src*='/static/ninja/swagger-ui-bundle.js']").count() == 1

    # Error pages: Django's 404 and admin's.
    seen.visit(live_platform.url("/no-such-page"), status=404)
    seen.visit(live_platform.url("/admin/no/such/page/"), status=404)

    page.goto(live_platform.url("/admin/"))
    page.locator("#logout-form button").click()
    expect(page.locator("#content")).to_contain_text("Logged out")
    page.wait_for_load_state("load")

    assert set(seen.walked) <= seen.documents(), "pages walked but never seen loaded"
    assert seen.responses_without_header() == []
    assert seen.foreign == []
    assert seen.violations == []
    assert seen.console == []


def test_a_script_injected_into_a_page_is_refused_and_reported_to_our_endpoint(
    page: Page, live_platform, staff_user
):
    watch(page, live_platform.url(""))
    log_in(page, live_platform, staff_user)

    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.injectedRan = true;"; document.body.appendChild(s); }"""
    )

    page.wait_for_function("() => window.cspViolations.length > 0")
    violations = page.evaluate("() => window.cspViolations")
    assert [(v["directive"], v["blocked"]) for v in violations] == [("script-src-elem", "inline")]
    assert page.evaluate("() => window.injectedRan === undefined"), "the injected script ran"
    # The browser sent its report to /csp-violations; the web process logged it.
    wait_until(
        lambda: live_platform.web.process.saw("csp violation: script-src-elem blocked inline on"),
        timeout=20,
        what=lambda: f"the web process to log the report\n{live_platform.web.process.tail()}",
    )
