"""WSGI entry point for gunicorn: `gunicorn -c ops/gunicorn.conf.py config.wsgi`."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The repository root (tasks/, integrations/) and platform/ (the Django source root).
for path in (str(ROOT), str(ROOT / "platform")):
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from config.chunked_bodies import ChunkedBodies  # noqa: E402

# Chunked request bodies get a length Django can see (and 413 past its limit).
application = ChunkedBodies(get_wsgi_application())
