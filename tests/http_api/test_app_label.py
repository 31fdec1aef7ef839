"""The HTTP app has one name: its label is `http_api` (it was `trigger_api`). A database migrated
under the old label keeps its tables, rows, content types and permissions (http_api/legacy_label.py)."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from http_api.apps import HttpApiConfig
from http_api.keys import authenticate, create_api_key
from http_api.models import AcceptedJob, ApiKey, IdempotencyRecord, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_app_is_labelled_by_its_name_and_keeps_its_tables():
    config = apps.get_app_config("http_api")
    assert isinstance(config, HttpApiConfig) and config.label == config.name == "http_api"
    tables = {model._meta.db_table for model in (ApiKey, AcceptedJob, IdempotencyRecord, WebhookEvent)}
    assert tables == {
        "trigger_api_apikey",
        "trigger_api_acceptedjob",
        "trigger_api_idempotencyrecord",
        "trigger_api_webhookevent",
    }


def test_migrate_adopts_a_database_migrated_under_the_old_label():
    row, key = create_api_key(name="from-an-older-release")
    content_types = dict(ContentType.objects.filter(app_label="http_api").values_list("model", "pk"))
    # As an older release left it: the history and the content types under "trigger_api".
    with connection.cursor() as cursor:
        cursor.execute("UPDATE django_migrations SET app = 'trigger_api' WHERE app = 'http_api'")
        cursor.execute(
            "UPDATE django_content_type SET app_label = 'trigger_api' WHERE app_label = 'http_api'"
        )
    ContentType.objects.clear_cache()

    call_command("migrate", verbosity=0)  # would fail creating the tables again if not adopted

    recorded = MigrationRecorder(connection).migration_qs
    assert set(recorded.filter(app="http_api").values_list("name", flat=True)) == {"0001_initial"}
    assert not recorded.filter(app="trigger_api").exists()
    assert dict(ContentType.objects.filter(app_label="http_api").values_list("model", "pk")) == content_types
    assert not ContentType.objects.filter(app_label="trigger_api").exists()
    # Same content type ids: permissions granted on API keys keep working, as does the key.
    assert Permission.objects.get(codename="change_apikey").content_type.app_label == "http_api"
    assert authenticate(key) == row
