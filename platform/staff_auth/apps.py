"""The staff_auth app; the admin app's config making StaffAdminSite the default site is admin_config.py."""

from django.apps import AppConfig


class StaffAuthConfig(AppConfig):
    name = "staff_auth"
    label = "staff_auth"
    verbose_name = "Staff sign-in"

    def ready(self) -> None:
        # Imported here: connecting signals and registering checks needs the app registry ready.
        from staff_auth import checks, throttling  # noqa: F401
