"""Reading `.env` into the environment: django-environ's parser, inline `# comments` dropped."""

from __future__ import annotations

import os
from pathlib import Path

import environ


class _ParsedFile(environ.Env):
    # read_env writes what it parses into cls.ENVIRON: here, not os.environ, so it can be tidied.
    ENVIRON: dict[str, str] = {}


def read_dotenv(path: Path) -> None:
    """Set each KEY=value line of `path` in os.environ, unless the real environment has KEY.

    `KEY=value   # note` gives `value`: without parse_comments django-environ keeps the comment
    (DEBUG=true  # ... would read as false), and with it the spaces before it, dropped here.
    Anything after a bare # is a comment: a value holding one goes in single quotes, 'pa#ss'.
    """
    parsed = _ParsedFile.ENVIRON = {}
    _ParsedFile.read_env(path, parse_comments=True)
    for key, value in parsed.items():
        os.environ.setdefault(key, value.rstrip())
