"""Ensure a local superuser exists for `make run`; print how to log in. Refuses in production."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

PASSWORD_FILE = settings.VAR_DIR / "local-admin-password"


class Command(BaseCommand):
    help = "Create the local 'admin' superuser if missing (password kept in var/local-admin-password)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("ensure_local_admin is for local runs (DEBUG=True) only")
        User = get_user_model()
        if PASSWORD_FILE.exists() and User.objects.filter(username="admin").exists():
            password = PASSWORD_FILE.read_text().strip()
        else:
            password = secrets.token_urlsafe(12)
            PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
            PASSWORD_FILE.write_text(password)
            PASSWORD_FILE.chmod(0o600)
            user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        self.stdout.write(f"[make run] log in to admin as 'admin' with password: {password}")
