"""Local fake HTTP servers for Twilio, Stripe, vehicle-history and FX, speaking the real API paths,
so the real SDKs and clients can be tested end to end (fixtures in fixtures.py)."""
