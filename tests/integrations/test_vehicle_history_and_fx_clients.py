"""The vehicle-history and FX clients (our own JSON clients) against local fake APIs."""

import time
from datetime import date
from decimal import Decimal

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.fx import ConsoleFx, get_fx_client
from integrations.vehicle_history import ConsoleVehicleHistory, get_vehicle_history_client
from tests.support.fakes import vehicle_history as fake_vh

VIN = "1HGCM82633A004352"


def test_a_report_is_fetched_by_vin_with_the_api_key(fake_vehicle_history):
    report = get_vehicle_history_client().fetch_report(VIN.lower())

    [request] = fake_vehicle_history.requests
    assert request.path == f"/v1/reports/{VIN}"
    assert request.header("X-API-Key") == fake_vh.API_KEY
    assert report.vin == VIN and report.payload["vin"] == VIN and report.paid_call is True


def test_rates_are_fetched_for_a_base_and_symbols_as_decimals(fake_fx):
    quote = get_fx_client().latest(base="cad", symbols=["USD", "XAF", "CAD"])

    [request] = fake_fx.requests
    assert request.path == "/latest"
    assert request.query == {"base": ["CAD"], "symbols": ["USD,XAF"]}
    assert quote.rates == {"USD": Decimal("0.7312"), "XAF": Decimal("441.25")}
    assert quote.as_of == date(2025, 6, 2)


def _fetch_report():
    return get_vehicle_history_client().fetch_report(VIN)


def _fetch_rates():
    return get_fx_client().latest(base="CAD", symbols=["USD"])


CLIENTS = [
    pytest.param("fake_vehicle_history", _fetch_report, id="vehicle-history"),
    pytest.param("fake_fx", _fetch_rates, id="fx"),
]


@pytest.mark.parametrize(("fake_name", "call"), CLIENTS)
@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(500, {}, None), (503, {}, None), (429, {"Retry-After": "30"}, 30.0)],
)
def test_server_errors_and_429_are_transient(request, fake_name, call, status, headers, retry_after):
    fake = request.getfixturevalue(fake_name)
    fake.fail_next(status, {"error": {"code": "busy", "message": "try later"}}, headers=headers)

    with pytest.raises(TransientError) as raised:
        call()

    assert raised.value.retry_after == retry_after
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("fake_name", "call"), CLIENTS)
def test_a_hung_connection_is_transient_within_the_read_timeout(request, short_timeouts, fake_name, call):
    fake = request.getfixturevalue(fake_name)
    fake.hang_next()

    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        call()

    assert raised.value.code == "timeout"
    assert time.monotonic() - started < short_timeouts.INTEGRATION_READ_TIMEOUT + 1.0


@pytest.mark.parametrize(("fake_name", "call"), CLIENTS)
@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_permanent_with_the_provider_code(request, fake_name, call, status):
    fake = request.getfixturevalue(fake_name)
    fake.fail_next(status, {"error": {"code": f"refused_{status}", "message": "no"}})

    with pytest.raises(PermanentError) as raised:
        call()

    assert raised.value.code == f"refused_{status}"


def test_a_wrong_api_key_is_permanent(fake_vehicle_history, settings):
    settings.VEHICLE_HISTORY_API_KEY = "wrong"

    with pytest.raises(PermanentError) as raised:
        _fetch_report()

    assert raised.value.code == "unauthorized"


def test_an_unknown_vin_is_permanent(fake_vehicle_history):
    with pytest.raises(PermanentError) as raised:
        get_vehicle_history_client().fetch_report(fake_vh.UNKNOWN_VIN)

    assert raised.value.code == "vin_not_found"


@pytest.mark.parametrize("vin", ["", "1HGCM82633A00435", "1HGCM82633A00435O", None])
def test_an_invalid_vin_is_refused_before_any_paid_call(fake_vehicle_history, vin):
    with pytest.raises(PermanentError) as raised:
        get_vehicle_history_client().fetch_report(vin)

    assert "vin must be a VIN: 17 letters and digits" in str(raised.value)
    assert fake_vehicle_history.requests == []


def test_without_configuration_the_console_backends_answer_realistically(settings):
    settings.VEHICLE_HISTORY_API_KEY = settings.VEHICLE_HISTORY_BACKEND = ""
    settings.FX_BASE_URL = settings.FX_BACKEND = ""

    report = get_vehicle_history_client().fetch_report(VIN)
    rates = get_fx_client().latest(base="CAD", symbols=["USD", "XAF"])

    assert isinstance(get_vehicle_history_client(), ConsoleVehicleHistory)
    assert report.paid_call is False and report.payload["vehicle"]["make"]
    assert isinstance(get_fx_client(), ConsoleFx)
    assert Decimal("0.6") < rates.rates["USD"] < Decimal("0.9")
    assert Decimal("400") < rates.rates["XAF"] < Decimal("480")
