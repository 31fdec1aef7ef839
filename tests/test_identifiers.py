"""Phone numbers, VINs and Content SIDs: one definition each, one masking, shared by every layer."""

import ast
from pathlib import Path

import pytest

import identifiers
from identifiers import (
    is_content_sid,
    is_e164,
    is_vin,
    mask_e164_in,
    mask_phone,
    mask_phones_in,
    normalize_vin,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+14165550123", "+1416*****23"),
        ("whatsapp:+14165550123", "whatsapp:+1416*****23"),
        ("+237699001122", "+2376******22"),
        ("", ""),
    ],
)
def test_mask_phone_keeps_country_area_and_last_two_digits(raw, masked):
    assert mask_phone(raw) == masked


def test_numbers_inside_free_text_are_masked_in_any_format():
    assert mask_phones_in("The 'To' number whatsapp:+14165550123 is invalid") == (
        "The 'To' number whatsapp:+1416*****23 is invalid"
    )


def test_e164_numbers_in_log_text_are_masked_the_same_way_url_encoded_or_not():
    assert mask_e164_in("+14165550123") == "+1416*****23"
    assert mask_e164_in("to whatsapp:+237670000001.") == "to whatsapp:+2376******01."
    assert mask_e164_in("To=whatsapp%3A%2B14165550123") == "To=whatsapp%3A%2B1416*****23"
    # Not phone numbers: amounts, ids, short codes.
    not_phones = "total +12.50, invoice 14165550123, +1234"
    assert mask_e164_in(not_phones) == not_phones


@pytest.mark.parametrize("number", ["+14165550123", "+237670000101", "+442071838750", "+12345678"])
def test_e164_numbers_are_recognized(number):
    assert is_e164(number)


@pytest.mark.parametrize(
    "number", ["4165550123", "+0416555012", "+1 416 555 0123", "whatsapp:+14165550123", "+1234567", None]
)
def test_anything_else_is_not_e164(number):
    assert not is_e164(number)


def test_a_vin_is_normalized_but_never_forgiven_i_o_or_q():
    assert normalize_vin(" 1hgcm82633a004352 ") == "1HGCM82633A004352"
    assert is_vin(normalize_vin(" 1hgcm82633a004352 "))
    assert not is_vin(normalize_vin("1hgcm82633a00435o"))
    assert not is_vin("1HGCM82633A00435") and not is_vin(12345678901234567)


def test_content_sids_are_hx_and_32_hex_digits():
    assert is_content_sid("HX" + "0123456789abcdef" * 2)
    assert not is_content_sid("HX123") and not is_content_sid("welcome")


def test_the_leaf_imports_nothing_of_ours_and_nothing_of_django():
    tree = ast.parse(Path(identifiers.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "re"}


def test_no_other_module_writes_these_patterns_again():
    patterns = [r"[A-HJ-NPR-Z0-9]{17}", r"\+[1-9]\d", r"HX[0-9a-fA-F]{32}"]
    sources = [
        path
        for folder in ("platform", "integrations", "tasks", "beat_schedules")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts and path != Path(identifiers.__file__)
    ]
    repeats = [(str(p.relative_to(ROOT)), x) for p in sources for x in patterns if x in p.read_text()]
    assert repeats == []
