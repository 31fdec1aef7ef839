"""Phone numbers, VINs and Twilio Content SIDs: what a valid one looks like, how one is
normalized, and how a phone number is masked for logs, admin and stored data.

The one home of these facts. Every layer imports it (model validators, task argument types, the
trigger API's JSON Schema, the Twilio and vehicle-history clients, log formatting), so it imports
nothing of ours and nothing of Django: a leaf anyone may depend on.
"""

from __future__ import annotations

import re

# E.164 (ITU-T): a plus, a country code not starting with 0, 8 to 15 digits in all. No spaces and
# no "whatsapp:" prefix (the WhatsApp client adds that itself).
E164_PATTERN = r"^\+[1-9]\d{7,14}$"
E164_EXAMPLE = "+14165550123"
E164_MESSAGE = f"must be an E.164 phone number, e.g. {E164_EXAMPLE}"

# ISO 3779: 17 characters, digits and capitals, never I, O or Q (confused with 1 and 0). The check
# digit is not enforced: it is mandatory only for North American VINs and exports carry others.
VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"
VIN_EXAMPLE = "1HGCM82633A004352"
VIN_MESSAGE = "must be a VIN: 17 letters and digits, without I, O or Q"

# A Twilio Content API template: "HX" and 32 hex digits.
CONTENT_SID_PATTERN = r"^HX[0-9a-fA-F]{32}$"
CONTENT_SID_EXAMPLE = "HX" + "0" * 32
CONTENT_SID_MESSAGE = "must be a Twilio Content SID: HX followed by 32 hex digits"

WHATSAPP_PREFIX = "whatsapp:"

_E164 = re.compile(E164_PATTERN)
_VIN = re.compile(VIN_PATTERN)
_CONTENT_SID = re.compile(CONTENT_SID_PATTERN)

# An E.164 number inside text: "+" (or its URL encoding "%2B") and the digits, not part of a
# longer token, so amounts (+12.50), ids (14165550123) and short codes (+1234) stay readable.
_E164_IN_TEXT = re.compile(r"(?P<marker>(?<![\w+])\+|%2[Bb])(?P<digits>[1-9]\d{7,14})(?!\d)")
# Anything that looks like a phone number in free text (provider error messages, message bodies).
_PHONE_LIKE_IN_TEXT = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def is_e164(value: object) -> bool:
    return isinstance(value, str) and _E164.match(value) is not None


def is_vin(value: object) -> bool:
    return isinstance(value, str) and _VIN.match(value) is not None


def is_content_sid(value: object) -> bool:
    return isinstance(value, str) and _CONTENT_SID.match(value) is not None


def normalize_vin(value: str) -> str:
    """' 1hgcm82633a004352 ' -> '1HGCM82633A004352': case and surrounding spaces are forgiven,
    I, O and Q are not (is_vin still refuses them)."""
    return value.strip().upper()


def _mask_digits(digits: str) -> str:
    # Country and area code (where a message went) and the last two digits (telling two numbers
    # apart) stay; never the whole subscriber number.
    if len(digits) <= 6:
        return "*" * len(digits)
    return f"{digits[:4]}{'*' * (len(digits) - 6)}{digits[-2:]}"


def mask_phone(value: str | None) -> str:
    """'+14165550123' -> '+1416*****23'; 'whatsapp:+14165550123' -> 'whatsapp:+1416*****23'."""
    if not value:
        return ""
    prefix, _, number = value.rpartition(":")
    prefix = f"{prefix}:" if prefix else ""
    plus = "+" if number.strip().startswith("+") else ""
    digits = re.sub(r"\D", "", number)
    return f"{prefix}{plus}{_mask_digits(digits)}"


def mask_e164_in(text: str) -> str:
    """Mask every E.164 number in `text`, URL-encoded ones too: for log lines and structured data
    such as task arguments, where looser matching would also mask ids, amounts and dates."""
    return _E164_IN_TEXT.sub(lambda m: m["marker"] + _mask_digits(m["digits"]), text or "")


def mask_phones_in(text: str) -> str:
    """Mask every phone-number-like run in free text (provider error messages, message bodies),
    written in any format."""
    return _PHONE_LIKE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text or "")
