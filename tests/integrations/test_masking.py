"""Phone numbers and secrets are masked the same way everywhere."""

import pytest

from integrations.masking import mask_phone, mask_phones_in, mask_secret


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


def test_numbers_inside_text_are_masked():
    assert mask_phones_in("The 'To' number whatsapp:+14165550123 is invalid") == (
        "The 'To' number whatsapp:+1416*****23 is invalid"
    )


def test_mask_secret_keeps_only_the_kind_and_last_characters():
    assert mask_secret("sk_test_51Habcdefghxyz") == "sk_test_…xyz"
