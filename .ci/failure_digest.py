"""What a failed `make test` in CI comes down to, printed last so that a reader of the run's tail
sees it: each failed or erroring test with its one-line reason (pytest's short summary, -ra), the
end of the first few failures' reports, any INTERNALERROR's exception, and the state of the
machine's services at the end of the run (a failure across many tests at once is usually one of
them running out of something).

Usage: python .ci/failure_digest.py var/ci/test.log   (stdlib only: it runs with any python3)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SHOWN_REPORTS = 3
REPORT_TAIL_LINES = 25
SUMMARY_LINES = 60
BUSIEST_COMMANDS = "ps -e -o comm= | sort | uniq -c | sort -rn | head -6 | paste -sd,"


def _sections(lines: list[str]) -> dict[str, list[str]]:
    """pytest's `==== name ====` sections and, within FAILURES/ERRORS, each `____ test ____` report."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        heading = re.match(r"^={5,} (.+?) ={5,}$", line)
        if heading:
            current = heading.group(1)
            sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append(line)
    return sections


def _reports(section: list[str]) -> list[tuple[str, list[str]]]:
    reports: list[tuple[str, list[str]]] = []
    for line in section:
        heading = re.match(r"^_{3,} (.+?) _{3,}$", line)
        if heading:
            reports.append((heading.group(1), []))
        elif reports:
            reports[-1][1].append(line)
    return reports


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603 (fixed commands of this file)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({argv[0]}: {exc})"
    return (done.stdout or done.stderr).strip()


def _services() -> list[str]:
    connections = _run(
        "psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc",
        "select count(*) || ' of ' || current_setting('max_connections') from pg_stat_activity",
    )  # fmt: skip
    redis = _run("redis-cli", "-h", "127.0.0.1", "-p", "6379", "info", "clients")
    clients = next((line for line in redis.splitlines() if line.startswith("connected_clients")), redis)
    rabbit = _run("rabbitmq-diagnostics", "-q", "status", "--formatter", "json")
    try:
        status = json.loads(rabbit)
        rabbit = f"file descriptors {status['file_descriptors']}, alarms {status['alarms']}"
    except (ValueError, KeyError):
        pass
    return [
        f"postgresql connections: {connections}",
        f"redis 6379: {clients}",
        f"rabbitmq: {rabbit[:300]}",
        f"load average: {Path('/proc/loadavg').read_text().strip()}",
        f"disk: {_run('df', '-h', '/').splitlines()[-1]}",
        f"most processes: {_run('sh', '-c', BUSIEST_COMMANDS)}",
    ]


def main(path: str) -> None:
    lines = Path(path).read_text(errors="replace").splitlines()
    sections = _sections(lines)
    out = ["", "=" * 30 + " CI failure digest " + "=" * 30]
    internal = [line for line in lines if line.startswith("INTERNALERROR>")]
    if internal:
        out += ["INTERNALERROR (its last lines):", *internal[-12:]]
    for name in ("FAILURES", "ERRORS"):
        for title, body in _reports(sections.get(name, []))[:SHOWN_REPORTS]:
            out += [f"--- {name[:-1].lower()}: {title}", *body[-REPORT_TAIL_LINES:]]
    summary = sections.get("short test summary info", [])
    out += ["--- every failed or erroring test (pytest -ra):", *summary[:SUMMARY_LINES]]
    if len(summary) > SUMMARY_LINES:
        out.append(f"... and {len(summary) - SUMMARY_LINES} more lines in {path}")
    out += ["--- the machine's services now:", *_services(), f"(the whole log: {path})"]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
