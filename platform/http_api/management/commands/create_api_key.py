"""python manage.py create_api_key NAME: print a new API key once (only its hash is kept)."""

from django.core.management.base import BaseCommand, CommandError

from http_api.keys import ApiKeyError, create_api_key


class Command(BaseCommand):
    help = "Create an API key for the trigger API and print it once; only its hash is stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Who will use the key, e.g. dealer-portal")

    def handle(self, *args, name: str, **options) -> None:
        try:
            _, key = create_api_key(name=name)
        except ApiKeyError as exc:
            raise CommandError(str(exc)) from None
        # The key alone on stdout (scripts capture it); the warning on stderr.
        self.stdout.write(key)
        self.stderr.write(
            "Store this key now: it cannot be shown again. Send it as 'Authorization: Bearer <key>'."
        )
