"""Fixtures for the trigger API tests: a fresh API key per test and a client that sends it."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from http_api.keys import create_api_key
from http_api.models import ApiKey


class ApiKeyFixture:
    def __init__(self, row: ApiKey, key: str) -> None:
        self.row, self.key = row, key

    @property
    def header(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.key}"}


@pytest.fixture
def api_key(db) -> ApiKeyFixture:
    row, key = create_api_key(name=f"test-{uuid.uuid4().hex[:10]}")
    return ApiKeyFixture(row, key)


@pytest.fixture
def api(api_key: ApiKeyFixture) -> Client:
    """A test client that authenticates every request with `api_key` and enforces CSRF like a browser
    would (the API must not need a CSRF token)."""
    return Client(enforce_csrf_checks=True, **api_key.header)


def post_job(client: Client, body, **headers):

    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/v1/jobs", data=data, content_type="application/json", **headers)


def assert_error(response, status: int, code: str) -> dict:
    """The response is the contract's error shape with this status and code; returns its details."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["details"]
