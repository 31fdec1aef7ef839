"""Default schedules (defaults.py) and their sync into django-celery-beat (sync.py)."""
