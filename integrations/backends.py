"""Choosing an integration's backend the way Django chooses an email backend: a setting holding a
dotted path, defaulting to the real client when credentials are configured, else the console one."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger("integrations.console")


def backend_class(setting: str, *, real: str, console: str, configured: bool) -> type[Any]:
    """The class named by settings.<setting>, else `real` if `configured`, else `console`."""
    path = getattr(settings, setting, "") or (real if configured else console)
    return import_string(path)


def fake_id(prefix: str, length: int = 32, *, alphabet: str = "0123456789abcdef") -> str:
    """A provider-shaped id for console responses: fake_id('SM') -> 'SM' + 32 hex digits."""
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def console_log(provider: str, action: str, **fields: Any) -> None:
    """One line saying what would have been sent. Callers pass values already masked."""
    details = " ".join(f"{name}={value!r}" for name, value in fields.items())
    logger.info("[console %s] would %s: %s", provider, action, details)
