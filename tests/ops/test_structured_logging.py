"""Log records become one JSON object per line, and phone numbers never appear in clear."""

import json
import logging
import sys

from config.structured_logging import JsonFormatter, PhoneMaskingFilter, PlainFormatter


def _record(msg: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("platform.tasks", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_plain_lines_are_masked_too():
    record = _record("texted %s", "To=whatsapp%3A%2B14165550123")

    assert PlainFormatter().format(record).endswith("texted To=whatsapp%3A%2B1416*****23")


def test_masking_filter_masks_message_arguments_and_extra_fields():
    record = _record("sent to %s", "+14165550123", recipients=["+14165550124"], to={"number": "+14165550125"})

    PhoneMaskingFilter().filter(record)

    assert record.getMessage() == "sent to +1416*****23"
    assert record.recipients == ["+1416*****24"]
    assert record.to == {"number": "+1416*****25"}


def test_json_formatter_writes_one_parseable_line_with_extra_fields_and_masked_traceback():
    try:
        raise ValueError("bad number +14165550123")
    except ValueError:
        record = _record("task %s failed", "x", task_id="abc", duration_ms=1.5)
        record.exc_info = sys.exc_info()

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "task x failed" and entry["level"] == "INFO"
    assert entry["task_id"] == "abc" and entry["duration_ms"] == 1.5
    assert "+1416*****23" in entry["exception"] and "+14165550123" not in line
