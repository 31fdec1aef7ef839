"""Comments and docs cite files that exist in the repository."""

import re
import subprocess

from tests.support.processes import ROOT

# The documents the platform was specified in live outside the repository: cite docs/ instead.
OUTSIDE = re.compile(r"\b(CONTRACT|ARCHITECTURE|BASELINES|STYLE)\.md\b")
CITED = re.compile(r"\bdocs/[\w-]+\.md\b")


def _tracked_text_files() -> list:
    names = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.toml", "*.html", "*.txt", "*.cfg", "Makefile", ".ci/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def test_no_file_cites_a_document_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _tracked_text_files()
        if path.name != "test_docs_cited.py"
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_every_cited_doc_exists():
    cited = {
        match for path in _tracked_text_files() for match in CITED.findall(path.read_text(errors="replace"))
    }
    assert cited, "nothing cites docs/: this test would prove nothing"
    assert sorted(name for name in cited if not (ROOT / name).is_file()) == []
