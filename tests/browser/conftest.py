"""A real browser against a running platform: Playwright (pytest-playwright) drives Debian's
Chromium through the admin of a real web process, with a real `celery worker` (and, where a
test starts one, `celery beat`) on a private Redis broker, the test database, and fake Twilio.

Fixtures, for any browser test (batches, say, after they land):

- `live_platform`: web (`manage.py runserver`, as `make run` starts it) + one worker consuming
  every queue, all subprocesses on the `broker` fixture's private Redis, the test database and
  the fake Twilio (`.twilio`); `.start_beat()` adds a beat and `.start_worker(name)` another
  worker, `.publisher` sends jobs as another program would, `.url(path)` makes absolute URLs;
  override `platform_settings` (extra environment, e.g. RATE_LIMITS) in a module to tune them;
- `staff_user`: a staff account (username, password, the key of its authenticator app);
  `admin_page`: a Page logged in to admin as that user through the login form, with both factors
  (the code computed from the key, as the app would: tests/support/two_factor.py).
- `live_flower`: `celery -A tasks flower` (flowerconfig.py, basic auth `FLOWER_CREDENTIALS`) on
  the `broker` fixture's broker, each test once on Redis and once on RabbitMQ unless the module
  narrows `broker`; `.start_worker(name)`, `.known_worker(prefix)`, `.publisher`, `.url(path)`.

Run on the Redis broker only: a test module sets
`pytestmark = pytest.mark.parametrize("broker", ["redis"], indirect=True)`.

A test that fails (in its body or its fixtures) leaves a full-page screenshot and the HTML of
every page it had open under the run's pytest temp directory; the failure report names them in
its "browser artifacts" section.

The browser: /usr/bin/chromium (Debian's package; `.ci/run` installs it), never a browser
downloaded by `playwright install`, which cannot work here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from celery import Celery
from playwright.sync_api import (
    Browser,
    BrowserContext,
    BrowserType,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.browser.pages import log_in
from tests.conftest import TestBroker, broker_client
from tests.support.fakes.twilio import FakeTwilio
from tests.support.processes import (
    ManagedProcess,
    WebServer,
    free_port,
    start_beat,
    start_web,
    start_worker,
    wait_until,
)
from tests.support.two_factor import enrol_authenticator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's waits (actions, navigations, expect): a shared 2-core machine can be slow, a
# healthy page is not; each wait still ends at the first moment its condition holds.
DEFAULT_TIMEOUT_MS = 20_000

_CONTEXTS = pytest.StashKey[list[BrowserContext]]()
_ARTIFACTS_ROOT = pytest.StashKey[Path]()
_PROCESSES = pytest.StashKey[list[ManagedProcess]]()


# --- The browser ----------------------------------------------------------------------------
# pytest-playwright's playwright, browser_type, launch_browser and browser fixtures live for the
# whole session; here they live for this package only. While Playwright's sync API runs, its event
# loop counts as running in the main thread, which Django's ORM refuses to be called from
# (SynchronousOnlyOperation) unless DJANGO_ALLOW_ASYNC_UNSAFE is set: set here while the browser
# runs, and gone, loop and all, before the rest of the suite.


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the tests' own ORM calls are synchronous
        with sync_playwright() as pw:
            yield pw


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def browser_type_launch_args(pytestconfig) -> dict:
    """Debian's Chromium, headless unless `--headed`."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)", pytrace=False)
    return {
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
        "headless": not pytestconfig.getoption("--headed"),
        "slow_mo": pytestconfig.getoption("--slowmo") or 0,
    }


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args: dict, browser_type: BrowserType):
    def launch(**kwargs) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict:
    return {"viewport": {"width": 1400, "height": 900}}


@pytest.fixture
def context(new_context, request, tmp_path_factory) -> BrowserContext:
    """pytest-playwright's context, remembered for the failure artifacts."""
    context = new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    request.node.stash.setdefault(_CONTEXTS, []).append(context)
    request.node.stash[_ARTIFACTS_ROOT] = tmp_path_factory.getbasetemp() / "browser-artifacts"
    return context


# --- Screenshots and HTML on failure --------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when in ("setup", "call"):
        lines = _save_artifacts(item, report.when)
        if lines:
            report.sections.append(("browser artifacts", "\n".join(lines)))
    return report


def _save_artifacts(item, when: str) -> list[str]:
    contexts = item.stash.get(_CONTEXTS, [])
    pages = [page for context in contexts for page in context.pages]
    lines = []
    if pages:
        name = re.sub(r"[^\w.-]+", "-", item.nodeid).strip("-")[-150:]
        directory = item.stash[_ARTIFACTS_ROOT] / f"{name}-{when}"
        directory.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(pages, start=1):
            lines.append(f"page {number}: {page.url}")
            for suffix, save in (
                ("png", lambda path, p=page: p.screenshot(path=path, full_page=True, timeout=10_000)),
                ("html", lambda path, p=page: Path(path).write_text(p.content())),
            ):
                path = directory / f"page-{number}.{suffix}"
                try:
                    save(str(path))
                    lines.append(f"  {suffix}: {path}")
                except Exception as exc:  # a crashed page must not hide the test's own failure
                    lines.append(f"  {suffix}: not saved ({type(exc).__name__}: {exc})")
    for process in item.stash.get(_PROCESSES, []):
        lines.append(f"--- last output of {process.name} ---\n{process.tail(25)}")
    return lines


# --- The running platform -------------------------------------------------------------------


@dataclass
class LivePlatform:
    """Web + worker (+ beat on demand) subprocesses on one private Redis broker and the test
    database, Twilio faked. Everything started is stopped at the end of the test."""

    env: dict[str, str]
    broker: TestBroker
    twilio: FakeTwilio
    web: WebServer
    started: list[ManagedProcess]
    worker: ManagedProcess | None = None  # the one `live_platform` starts, consuming every queue

    def url(self, path: str = "/") -> str:
        return f"{self.web.url}{path}"

    @property
    def publisher(self) -> Celery:
        """Publishes to this platform's broker as another program would (tests/conftest.py)."""
        return broker_client(self.broker.url)

    def start_worker(self, name: str, *, queues: str | None = None, concurrency: int = 2) -> ManagedProcess:
        """Another `celery worker` (prefork) on this platform, returned once ready."""
        worker = start_worker(self.env, name=name, queues=queues, concurrency=concurrency)
        self.started.append(worker)
        return worker

    def start_beat(self, name: str = "beat") -> ManagedProcess:
        """A `celery beat` on this platform, returned once it leads (holds the schedule lease)."""
        beat = start_beat(self.env, name=name)
        self.started.append(beat)
        wait_until(
            lambda: beat.saw("is now the leader") or beat.proc.poll() is not None,
            timeout=60,
            what=lambda: f"{name} to lead\n{beat.tail()}",
        )
        assert beat.proc.poll() is None, beat.tail()
        return beat


@pytest.fixture
def platform_settings() -> dict[str, str]:
    """Extra environment for the platform's processes (settings: README "Settings"). Override it
    in a test module, e.g. `RATE_LIMITS="twilio=5/s"` to watch a bulk send's progress move."""
    return {}


@pytest.fixture
def live_platform(
    request, database_url, broker: TestBroker, fake_twilio, platform_settings
) -> Iterator[LivePlatform]:
    env = broker.env(database_url=database_url, **fake_twilio.settings(), **platform_settings)
    # Set in this process for the browser's sake only (see `playwright`): the platform's own
    # processes run with Django's async-safety check, as they do in production.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    started: list[ManagedProcess] = []
    request.node.stash[_PROCESSES] = started  # their output goes into a failure's report
    try:
        web = start_web(env, name="web")
        started.append(web.process)
        platform = LivePlatform(env=env, broker=broker, twilio=fake_twilio, web=web, started=started)
        platform.worker = platform.start_worker("browser-worker")
        yield platform
    finally:
        for process in reversed(started):
            process.stop()


# --- Flower ---------------------------------------------------------------------------------

# FLOWER_BASIC_AUTH of the test's Flower; a Flower test module passes them to the browser with
# `pytest.mark.browser_context_args(http_credentials=...)`.
FLOWER_CREDENTIALS = ("ops", "flower-s3cret-pass")


@dataclass
class LiveFlower:
    """`celery -A tasks flower` (behind basic auth, as everywhere) on the `broker` fixture's broker
    and the test database, with the platform's environment; `.start_worker(name)` adds a worker.
    Everything started is stopped at the end of the test."""

    env: dict[str, str]
    broker: TestBroker
    process: ManagedProcess
    root: str
    started: list[ManagedProcess]

    credentials = FLOWER_CREDENTIALS

    def url(self, path: str = "/") -> str:
        return f"{self.root}{path}"

    @property
    def publisher(self) -> Celery:
        """Publishes to this broker as another program would (tests/conftest.py)."""
        return broker_client(self.broker.url)

    def start_worker(self, name: str, *, queues: str | None = None, concurrency: int = 1) -> ManagedProcess:
        """A `celery worker` (prefork) on this broker, returned once ready."""
        worker = start_worker(self.env, name=name, queues=queues, concurrency=concurrency)
        self.started.append(worker)
        return worker

    def known_worker(self, prefix: str, *, timeout: float = 60) -> dict:
        """Flower's record of the worker `prefix@...` once it has inspected it (its API, refreshed:
        Flower's own start-up inspection may have come before the worker, or timed out)."""

        def inspected():
            try:
                answer = requests.get(
                    self.url("/api/workers"), params={"refresh": "1"}, auth=self.credentials, timeout=30
                )
            except requests.RequestException:
                return None
            if answer.status_code != 200:
                return None
            return next(
                (
                    info
                    for name, info in answer.json().items()
                    if name.startswith(f"{prefix}@") and info.get("active_queues")
                ),
                None,
            )

        return wait_until(
            inspected,
            timeout=timeout,
            interval=0.5,
            what=lambda: f"flower to inspect {prefix}\n{self.process.tail()}",
        )


@pytest.fixture
def live_flower(request, database_url, broker: TestBroker) -> Iterator[LiveFlower]:
    env = broker.env(database_url=database_url, FLOWER_BASIC_AUTH=":".join(FLOWER_CREDENTIALS))
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # as in live_platform
    started: list[ManagedProcess] = []
    request.node.stash[_PROCESSES] = started  # their output goes into a failure's report
    port = free_port()
    try:
        process = ManagedProcess(
            [sys.executable, "-m", "celery", "-A", "tasks", "flower", f"--port={port}"], env, "flower"
        )
        started.append(process)
        flower = LiveFlower(
            env=env, broker=broker, process=process, root=f"http://127.0.0.1:{port}", started=started
        )
        wait_until(
            lambda: _answers(flower.url("/healthcheck")) or process.proc.poll() is not None,
            timeout=60,
            interval=0.2,
            what=lambda: f"flower to answer HTTP\n{process.tail()}",
        )
        if process.proc.poll() is not None:
            raise RuntimeError(f"flower exited:\n{process.tail()}")
        yield flower
    finally:
        for process in reversed(started):
            process.stop()


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:
        return False
    return True


@dataclass(frozen=True)
class StaffUser:
    username: str
    password: str
    # The key of the staff member's authenticator app: tests compute its current code
    # (tests/support/two_factor.py current_code), as the app would.
    totp_key: bytes


def make_staff_user(django_user_model, username: str, password: str) -> StaffUser:
    """A superuser with an authenticator (staff_auth: admin asks for its code at login)."""
    user = django_user_model.objects.create_superuser(username, f"{username}@example.com", password)
    return StaffUser(username, password, enrol_authenticator(user).bin_key)


@pytest.fixture
def staff_user(django_user_model) -> StaffUser:
    """An ops staff account: admin access with every permission (superuser), and an authenticator."""
    return make_staff_user(django_user_model, "ops-staff", "correct horse battery staple")


@pytest.fixture
def admin_page(page: Page, live_platform: LivePlatform, staff_user: StaffUser) -> Page:
    """A page logged in to admin as `staff_user`, through admin's login form."""
    log_in(page, live_platform, staff_user)
    return page
