"""How staff sign in to admin: two factors (django-otp), throttled guesses (django-axes), audited
lockouts and unlocks, and the client address both the login and the trigger API count by."""
