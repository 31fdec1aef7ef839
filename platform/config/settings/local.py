"""Settings for `make run` on a developer's machine: DEBUG on, SQLite and console integrations by default."""

import importlib.util

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)

# django-debug-toolbar: every request's SQL, with duplicated and similar queries flagged (the
# N+1 finder), on HTML pages served to this machine. Local only: it is pinned in
# requirements/dev.txt, never in base.txt or prod.txt, and only this settings module installs it.
# config/urls.py adds its URLs only when it is installed here.
if DEBUG and importlib.util.find_spec("debug_toolbar") is not None:
    INSTALLED_APPS = [*INSTALLED_APPS, "debug_toolbar"]  # noqa: F405
    # As early as possible, but after GZipMiddleware, which must not compress the page before the
    # toolbar is inserted into it.
    _after_gzip = MIDDLEWARE.index("django.middleware.gzip.GZipMiddleware") + 1  # noqa: F405
    MIDDLEWARE = [
        *MIDDLEWARE[:_after_gzip],  # noqa: F405
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        *MIDDLEWARE[_after_gzip:],  # noqa: F405
    ]
    INTERNAL_IPS = ["127.0.0.1", "::1"]
    # Collapsed to its handle: expanded, it covers the right third of every admin page.
    DEBUG_TOOLBAR_CONFIG = {"SHOW_COLLAPSED": True}

# `make run`: staff log in with their password alone (docs/security.md). Everywhere else a second
# factor is required unless STAFF_TWO_FACTOR_REQUIRED says otherwise.
STAFF_TWO_FACTOR_REQUIRED = env.bool("STAFF_TWO_FACTOR_REQUIRED", default=False)
