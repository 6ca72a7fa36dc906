"""Every DRF token (rest_framework.authtoken, kept in plain text) becomes an API key with the same secret.

Clients go on sending `Authorization: Token <their key>`; the database keeps only its SHA-256 and
its first 8 characters. Then the plain-text table goes, with rest_framework.authtoken's rows in
django_migrations (the app is no longer installed), so no copy of a secret is left behind. Where
rest_framework.authtoken is still installed (the benchmark's settings), the table stays.

Backwards there is nothing to undo: a hash gives no token back, and the keys go on working.
"""

import hashlib

from django.apps import apps as installed_apps
from django.db import migrations

TABLE = "authtoken_token"
PREFIX_LENGTH = 8  # credentials.models.LEGACY_PREFIX_LENGTH, frozen here as migrations must be
MAX_PREFIX_LENGTH = 16


def api_keys_from_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return  # a database made after rest_framework.authtoken left, or one that never had tokens
    api_key_model = apps.get_model("credentials", "ApiKey")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, created, user_id FROM {TABLE} ORDER BY created")
        tokens = cursor.fetchall()
    known = set(api_key_model.objects.values_list("key_hash", flat=True))
    taken = set(api_key_model.objects.values_list("prefix", flat=True))
    keys = []
    for key, created, user_id in tokens:
        key_hash = hashlib.sha256(key.encode()).hexdigest()
        if key_hash in known:
            continue  # migrated before (forwards, backwards, forwards again)
        length = PREFIX_LENGTH
        while key[:length] in taken and length < min(MAX_PREFIX_LENGTH, len(key)):
            length += 1  # two tokens starting alike: the prefix is what tells keys apart in the admin
        taken.add(key[:length])
        keys.append(
            api_key_model(
                user_id=user_id,
                name="DRF token (migrated)",
                prefix=key[:length],
                key_hash=key_hash,
                date_created=created,
            )
        )
    api_key_model.objects.bulk_create(keys, batch_size=1000)
    if not installed_apps.is_installed("rest_framework.authtoken"):
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(TABLE)}")
        schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("credentials", "0001_api_keys_and_identities")]

    operations = [migrations.RunPython(api_keys_from_drf_tokens, migrations.RunPython.noop, elidable=False)]
