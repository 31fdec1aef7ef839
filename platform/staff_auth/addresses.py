"""The client's address, as the login throttle and the trigger API's bad-key throttle count it.

Behind TRUSTED_PROXY_COUNT reverse proxies, each appending the address it saw to
X-Forwarded-For, the client is the entry that many places from the end; anything further left was
written by the client and is not trusted. With no proxy (0) it is REMOTE_ADDR.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address, or None when the request carries no usable one."""
    hops = settings.TRUSTED_PROXY_COUNT
    candidate = request.META.get("REMOTE_ADDR", "")
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        # Each of our proxies appends the address its request came from: the last entry is what the
        # proxy nearest us saw, and the client is the hops-th from the end. Fewer entries than
        # proxies: not our proxies' header, so REMOTE_ADDR stands.
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
