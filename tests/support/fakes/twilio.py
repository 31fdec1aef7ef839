"""A fake Twilio REST API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json, with Twilio's
basic auth, JSON answers and error codes (its magic test numbers give the invalid-number errors)."""

from __future__ import annotations

import base64
import secrets
from email.utils import formatdate

from tests.support.fakes.server import FakeServer, Recorded, Reply

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
WHATSAPP_FROM = "+14155238886"

# Twilio's test credentials treat these numbers specially; so does this fake.
INVALID_NUMBER = "+15005550001"  # 21211 invalid 'To' phone number
NOT_MOBILE_NUMBER = "+15005550009"  # 21614 'To' number is not a valid mobile number
NO_WHATSAPP_NUMBER = "+15005550006"  # 63003 channel could not find the To address
REGION_NOT_ENABLED_NUMBER = "+15005550003"  # 21408 the account may not send to this region

_ERRORS = {
    INVALID_NUMBER: (21211, "The 'To' number {to} is not a valid phone number."),
    NOT_MOBILE_NUMBER: (21614, "'To' number {to} is not a valid mobile number"),
    NO_WHATSAPP_NUMBER: (63003, "Channel could not find To address {to}"),
    REGION_NOT_ENABLED_NUMBER: (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}",
    ),
}


def twilio_error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio(FakeServer):
    name = "twilio"

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: dict[str, dict] = {}
        # The magic numbers this account refuses (code, message); a test may change its mind,
        # e.g. allow REGION_NOT_ENABLED_NUMBER once "the account allows that region".
        self.refused: dict[str, tuple[int, str]] = dict(_ERRORS)
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", r"/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json", self._create_message)
        self.route("GET", r"/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages/(?P<msg>SM\w+)\.json", self._get)
        self.route("GET", r"/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json", self._list)

    def settings(self) -> dict[str, str]:
        """Django settings (and environment variables) pointing the real SDK at this fake."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
            "TWILIO_BASE_URL": self.url,
            "TWILIO_BACKEND": "",
        }

    def sent(self) -> list[Recorded]:
        """Requests that created a message (accepted or not)."""
        return self.requests_to("/Messages.json", "POST")

    def _authorized(self, request: Recorded, sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return sid == self.account_sid and request.header("Authorization") == f"Basic {expected}"

    def _create_message(self, request: Recorded, match) -> Reply:
        if not self._authorized(request, match["sid"]):
            return Reply(401, twilio_error(401, 20003, "Authenticate"))
        form = request.form
        to = form.get("To", "")
        number = to.removeprefix("whatsapp:")
        if number in self.refused:
            code, text = self.refused[number]
            return Reply(400, twilio_error(400, code, text.format(to=to)))
        if not form.get("Body") and not form.get("ContentSid"):
            return Reply(
                400, twilio_error(400, 21619, "A text message body or media urls must be specified.")
            )
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        message = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
        }
        self.messages[sid] = message
        return Reply(201, message)

    def _list(self, request: Recorded, match) -> Reply:
        """Messages, newest first, filtered by To and From as Twilio's list endpoint does."""
        if not self._authorized(request, match["sid"]):
            return Reply(401, twilio_error(401, 20003, "Authenticate"))
        query = {key: values[-1] for key, values in request.query.items()}
        found = [
            m
            for m in reversed(list(self.messages.values()))
            if m["to"] == query.get("To", m["to"]) and m["from"] == query.get("From", m["from"])
        ]
        size = int(query.get("PageSize", 50))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return Reply(
            200,
            {
                "messages": found[:size],
                "end": min(size, len(found)) - 1,
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
        )

    def _get(self, request: Recorded, match) -> Reply:
        if not self._authorized(request, match["sid"]):
            return Reply(401, twilio_error(401, 20003, "Authenticate"))
        message = self.messages.get(match["msg"])
        if message is None:
            return Reply(404, twilio_error(404, 20404, "The requested resource was not found"))
        return Reply(200, message)
