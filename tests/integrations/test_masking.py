"""Secrets are masked to their kind and last characters (phone numbers: tests/test_identifiers.py)."""

from integrations.masking import mask_secret


def test_mask_secret_keeps_only_the_kind_and_last_characters():
    assert mask_secret("sk_test_51Habcdefghxyz") == "sk_test_…xyz"
