"""Log formatting for every process: one JSON object per line (or plain text), phone numbers masked.

Wired in by LOGGING in config/settings/base.py (LOG_FORMAT=json|plain). Web and workers use the
same configuration (tasks/app.py applies Django's LOGGING to Celery through setup_logging).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# E.164 numbers (a "+" or its URL-encoded "%2B", then 9-15 digits), wherever they appear:
# "+14165550123", "whatsapp:+14165550123", "To=whatsapp%3A%2B14165550123". The country code
# and area code prefix and the last two digits stay readable, enough to tell numbers apart.
_PHONE = re.compile(r"((?<![\w+])\+|%2[Bb])(\d{4})(\d{3,9})(\d{2})(?!\d)")

# Attributes every LogRecord has; anything else on a record came from `extra=` and is data.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)


def mask_phone_numbers(text: str) -> str:
    """'+14165550123' -> '+1416*****23'."""
    return _PHONE.sub(lambda m: f"{m[1]}{m[2]}{'*' * len(m[3])}{m[4]}", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone_numbers(value)
    if isinstance(value, dict):
        return {key: _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(item) for item in value]
    return value


class PhoneMaskingFilter(logging.Filter):
    """Masks phone numbers in a record's message and its extra fields, before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug; let logging report it
            return True
        record.msg, record.args = mask_phone_numbers(message), None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, _mask_value(value))
        return True


class PlainFormatter(logging.Formatter):
    """Human-readable lines for local runs; tracebacks masked too."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return mask_phone_numbers(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields, and
    the traceback if any. Extra fields are how callers attach structure (task_id, duration...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Masked again at the end: tracebacks and reprs never went through the filter.
        return mask_phone_numbers(json.dumps(entry, default=str, ensure_ascii=False))
