"""python manage.py revoke_api_key NAME: disable a key from the next request on."""

from django.core.management.base import BaseCommand, CommandError

from http_api.keys import ApiKeyError, revoke_api_key


class Command(BaseCommand):
    help = "Revoke an API key by name; it is refused from the next request on, in every process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")

    def handle(self, *args, name: str, **options) -> None:
        try:
            row = revoke_api_key(name=name)
        except ApiKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Revoked {row.name} (pk_{row.prefix}_…) at {row.revoked_at.isoformat()}")
