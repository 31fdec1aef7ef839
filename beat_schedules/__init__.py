"""The platform's default schedules, as plain declarations (defaults.py); platform/jobs/schedules/sync.py
copies them into django-celery-beat."""
