"""Where `celery -A tasks ...` finds the platform's Celery app (platform/jobs/celery_app.py)."""

import os
import sys
from pathlib import Path

_platform_root = str(Path(__file__).resolve().parent.parent / "platform")
if _platform_root not in sys.path:
    # platform/ is the Django source root; see manage.py.
    sys.path.insert(0, _platform_root)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from jobs.celery_app import app  # noqa: E402

__all__ = ("app",)
