"""One small client per outside system (Twilio, Stripe, vehicle history, FX), with typed errors."""
