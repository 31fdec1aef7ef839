#!/usr/bin/env python
"""Django's command-line entry point; puts platform/ (the Django source root) on sys.path."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    # platform/ is a source root, never a package: importing it as `platform` would shadow
    # the standard library module that uuid, kombu, twilio and stripe import.
    sys.path.insert(0, str(ROOT / "platform"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
