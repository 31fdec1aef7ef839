"""Log formatting for every process: one JSON object per line (or plain text), phone numbers masked.

Wired in by LOGGING in config/settings/base.py (LOG_FORMAT=json|plain). Web and workers use the
same configuration (tasks/app.py applies Django's LOGGING to Celery through setup_logging).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# E.164 numbers wherever they appear: "+14165550123", "whatsapp:+14165550123",
# "To=whatsapp%3A%2B14165550123" -> "+1416*****23" (platform/identifiers/, the platform's one masker).
from identifiers import mask_e164_in

# Attributes every LogRecord has; anything else on a record came from `extra=` and is data.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_e164_in(value)
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
        record.msg, record.args = mask_e164_in(message), None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, _mask_value(value))
        return True


class PlainFormatter(logging.Formatter):
    """Human-readable lines for local runs; tracebacks masked too."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return mask_e164_in(super().format(record))


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
        return mask_e164_in(json.dumps(entry, default=str, ensure_ascii=False))
