"""Locked dependencies (docs/security.md): requirements/*.in compile into locks that pin every
package with the sha256 of its files, `make install` and `.ci/run` install them hash-checked, and
CI runs pip-audit on them, where an advisory fails the run until it is listed with its reason."""

import json
import re
import subprocess

from tests.support.fakes.osv import FakeOsv
from tests.support.processes import ROOT

REQUIREMENTS = ROOT / "requirements"
LOCKS = ("base", "prod", "dev")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[\w,-]+\])?==(?P<version>\S+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path) -> list[str]:
    """The file's requirements, each with its continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    return [
        line.split(" #")[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _locked(name: str) -> dict[str, str]:
    pins = {}
    for requirement in _requirements(REQUIREMENTS / f"{name}.txt"):
        match = PIN.match(requirement.split()[0])
        pins[_normal(match["name"])] = match["version"]
    return pins


def _inputs(name: str) -> dict[str, str]:
    """The top-level pins of requirements/<name>.in, following its -r includes."""
    pins = {}
    for requirement in _requirements(REQUIREMENTS / f"{name}.in"):
        if requirement.startswith("-r "):
            pins |= _inputs(requirement.split()[1].removesuffix(".in"))
        elif not requirement.startswith("-c "):
            match = PIN.match(requirement)
            assert match, f"{name}.in: {requirement!r} is not pinned with =="
            pins[_normal(match["name"])] = match["version"]
    return pins


def _make_dry_run(*args: str) -> list[str]:
    result = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return re.sub(r"\\\n\s*", " ", result.stdout).splitlines()


def test_every_locked_requirement_is_pinned_with_the_hashes_of_its_files():
    for name in LOCKS:
        requirements = _requirements(REQUIREMENTS / f"{name}.txt")
        assert len(requirements) > 20, f"{name}.txt locks only {len(requirements)} packages"
        for requirement in requirements:
            pin, *hashes = requirement.split()
            assert PIN.match(pin), (
                f"{name}.txt: {requirement[:80]!r} is not a pin (no -r, -e or URL in a lock)"
            )
            assert hashes, f"{name}.txt: {pin} has no hash"
            assert all(HASH.match(h) for h in hashes), f"{name}.txt: {pin} has a line that is not a sha256"


def test_each_lock_holds_its_inputs_pins_and_the_locks_agree():
    for name in LOCKS:
        locked = _locked(name)
        stale = {
            pkg: (version, locked.get(pkg))
            for pkg, version in _inputs(name).items()
            if locked.get(pkg) != version
        }
        assert stale == {}, f"requirements/{name}.in changed since the lock: run `make lock`"
    base, prod, dev = (_locked(name) for name in LOCKS)
    assert prod == base  # production installs the runtime set and nothing else
    assert {pkg: dev.get(pkg) for pkg in base} == base  # development adds tools, moves nothing


def test_make_install_installs_the_dev_lock_hash_checked_and_make_lock_compiles_with_hashes(tmp_path):
    install = [line for line in _make_dry_run("install", f"VENV={tmp_path}/venv") if " install " in line]
    assert len(install) == 1
    assert "--require-hashes" in install[0].split() and install[0].endswith("-r requirements/dev.txt")

    compiles = [line for line in _make_dry_run("lock", f"VENV={tmp_path}/venv") if "uv pip compile" in line]
    assert [line.split()[-3:] for line in compiles] == [
        [f"requirements/{name}.in", "-o", f"requirements/{name}.txt"] for name in LOCKS
    ]
    assert all("--generate-hashes" in line.split() for line in compiles)


def test_ci_installs_the_locks_and_runs_pip_audit_strictly_on_them():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert commands.index("make install") < commands.index("make lint")
    assert "make audit" in commands
    (audit,) = [line for line in _make_dry_run("audit", "VENV=/nonexistent") if "pip-audit" in line]
    words = audit.split()
    assert {"--strict", "--require-hashes", "--disable-pip"} <= set(words)
    assert audit.endswith("-r requirements/dev.txt -r requirements/prod.txt")


def test_an_advisory_against_a_locked_release_fails_the_audit_until_it_is_listed_with_its_reason(tmp_path):
    osv = FakeOsv().start()
    try:
        django = _locked("dev")["django"]
        osv.advise("django", django, "GHSA-lock-test-0001", fixed="99.0")
        ignore = tmp_path / "audit-ignore"
        ignore.write_text("# nothing ignored yet\n")

        def audit():
            return subprocess.run(
                [
                    "make",
                    "-o",
                    ".venv/.installed",  # the venv as it is: this test installs nothing
                    "audit",
                    f"AUDIT_IGNORE_FILE={ignore}",
                    f"AUDIT_ARGS=-s osv --osv-url {osv.url}/v1/query --cache-dir {tmp_path}",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=240,
            )

        found = audit()
        assert "pip install" not in found.stdout
        assert found.returncode != 0
        assert re.search(
            rf"^django\s+{re.escape(django)}\s+GHSA-lock-test-0001\s+99\.0", found.stdout, re.M
        ), found.stdout
        asked = {_normal(json.loads(request.body)["package"]["name"]) for request in osv.requests}
        assert asked == set(_locked("dev"))  # every locked package, from the lock alone

        ignore.write_text("GHSA-lock-test-0001  the test's own advisory: it affects nothing real\n")
        listed = audit()
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "--ignore-vuln GHSA-lock-test-0001" in listed.stdout
    finally:
        osv.stop()


def test_every_ignored_advisory_names_its_id_and_why_it_does_not_apply():
    for line in (REQUIREMENTS / "audit-ignore").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            advisory, _, reason = line.partition(" ")
            assert re.match(r"^(PYSEC|GHSA|CVE)-", advisory), line
            assert len(reason.split()) >= 3, f"{advisory}: say why it does not apply"
