"""Test-data factories (tests/factories.py) for the bench, safe to run again on the same database."""

from __future__ import annotations

import itertools
import time


def factories():
    """tests.factories, its uniqueness counter moved past anything an earlier run created
    (usernames, VINs and invoice numbers come from it, and the bench database persists)."""
    from tests import factories as module

    module._seq = itertools.count(time.time_ns() // 1000 % 10**11)
    return module
