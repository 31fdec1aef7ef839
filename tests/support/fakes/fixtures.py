"""Pytest fixtures for the fake providers (imported by tests/conftest.py): each starts its fake
server and points the Django settings at it, so the real SDK or client talks to the fake.

`fake.settings()` is also the environment for worker subprocesses (platform_env(**fake.settings()))."""

from __future__ import annotations

import pytest

from tests.support.fakes.fx import FakeFx
from tests.support.fakes.stripe import FakeStripe
from tests.support.fakes.twilio import FakeTwilio
from tests.support.fakes.vehicle_history import FakeVehicleHistory


def _serve(fake, settings):
    fake.start()
    for name, value in fake.settings().items():
        setattr(settings, name, value)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_twilio(settings):
    """A running fake Twilio; TWILIO_* settings point the SDK at it."""
    yield from _serve(FakeTwilio(), settings)


@pytest.fixture
def fake_stripe(settings):
    """A running fake Stripe; STRIPE_* settings (webhook secret included) point the SDK at it."""
    yield from _serve(FakeStripe(), settings)


@pytest.fixture
def fake_vehicle_history(settings):
    """A running fake vehicle-history API; VEHICLE_HISTORY_* settings point the client at it."""
    yield from _serve(FakeVehicleHistory(), settings)


@pytest.fixture
def fake_fx(settings):
    """A running fake exchange-rates API; FX_BASE_URL points the client at it."""
    yield from _serve(FakeFx(), settings)


@pytest.fixture
def short_timeouts(settings):
    """Integration timeouts short enough to test a hung provider quickly (connect 0.5 s, read 0.5 s)."""
    settings.INTEGRATION_CONNECT_TIMEOUT = 0.5
    settings.INTEGRATION_READ_TIMEOUT = 0.5
    return settings
