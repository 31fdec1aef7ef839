"""Watching a page for the Content-Security-Policy (docs/security.md) as the browser applies it:
each response from the platform (its header checked later), each request to another origin, each
violation (a `securitypolicyviolation` event or a console message). Used by the policy's own walk
(test_content_security_policy.py) and by Flower in the admin (test_flower_in_admin.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Page, Request, Response

HEADER = "content-security-policy"

# Hands every violation the page sees to the test (window.reportCspViolation, exposed by
# `watch`) and keeps the page's own in window.cspViolations. Added to each document before its
# own scripts run, through the browser's devtools protocol, which the policy does not govern.
_LISTEN_FOR_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const violation = {
    document: e.documentURI, directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample,
  };
  window.cspViolations.push(violation);
  window.reportCspViolation(violation);
});
"""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class PolicyWatch:
    """What a page did, as the browser saw it, since the watch began: each response from the
    platform (its header checked later), each request to another origin, each violation (event
    or console message)."""

    page: Page
    origin: str
    walked: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    violations: list[dict] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def visit(self, url: str, *, status: int = 200) -> None:
        """Open `url` in the page and wait for its load event; its answer must be `status`."""
        self.walked.append(url)
        response = self.page.goto(url)
        assert response is not None and response.status == status, f"{url}: {response and response.status}"
        self.page.wait_for_load_state("load")

    def documents(self) -> set[str]:
        return {r.url for r in self.responses if r.request.resource_type == "document"}

    def on_request(self, request: Request) -> None:
        if request.url.startswith(("data:", "blob:")):
            return  # content carried in the address itself, fetched from nowhere
        if _origin(request.url) != self.origin:
            self.foreign.append(f"{request.url} (from {request.frame.url})")

    def on_response(self, response: Response) -> None:
        # Static files are served by runserver's static handler (the reverse proxy in production),
        # not by Django: a policy governs documents, not the scripts and styles they load.
        if _origin(response.url) == self.origin and not urlsplit(response.url).path.startswith("/static/"):
            self.responses.append(response)

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(
                f"{message.type}: {message.text} (on {message.page.url if message.page else '?'})"
            )

    def responses_without_header(self) -> list[str]:
        return [f"{r.status} {r.url}" for r in self.responses if HEADER not in r.all_headers()]


def watch(page: Page, origin: str) -> PolicyWatch:
    seen = PolicyWatch(page, origin)
    page.expose_function("reportCspViolation", lambda violation: seen.violations.append(violation))
    page.add_init_script(_LISTEN_FOR_VIOLATIONS)
    page.on("request", seen.on_request)
    page.on("response", seen.on_response)
    page.on("console", seen.on_console)
    return seen
