"""Integration-client tests run without the shared rate limits, except where a test sets them:
the limiter's window lives in Redis and would leak between quick successive tests."""

import pytest


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.RATE_LIMITS = {}
