"""The data migration: every DRF token of an existing database keeps working as a hashed API key.

The database is put back where an installation upgraded from DRF tokens is: credentials at its
first migration, and rest_framework.authtoken's table (exactly as DRF's migrations made it,
from `pg_dump -s -t authtoken_token`) holding plain-text tokens. Then it is migrated forward,
and the old keys are sent over HTTP.
"""

import binascii
import datetime as dt
import hashlib
import os

import pytest
import requests
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from credentials.models import ApiKey

DRF_TOKEN_TABLE = """
    CREATE TABLE authtoken_token (
        key character varying(40) NOT NULL,
        created timestamp with time zone NOT NULL,
        user_id integer NOT NULL
    );
    ALTER TABLE ONLY authtoken_token ADD CONSTRAINT authtoken_token_pkey PRIMARY KEY (key);
    ALTER TABLE ONLY authtoken_token ADD CONSTRAINT authtoken_token_user_id_key UNIQUE (user_id);
    CREATE INDEX authtoken_token_key_10f0b77e_like ON authtoken_token USING btree (key varchar_pattern_ops);
    ALTER TABLE ONLY authtoken_token ADD CONSTRAINT authtoken_token_user_id_35299eff_fk_auth_user_id
        FOREIGN KEY (user_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;
"""
DRF_MIGRATIONS = ["0001_initial", "0002_auto_20160226_1747", "0003_tokenproxy", "0004_alter_tokenproxy_options"]


def drf_key() -> str:
    return binascii.hexlify(os.urandom(20)).decode()  # as rest_framework.authtoken makes them


def migrate(target) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(target if target else executor.loader.graph.leaf_nodes())


def table_exists(name: str) -> bool:
    return name in connection.introspection.table_names()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_drf_tokens_become_api_keys_that_keep_working_over_http(live_server, user_with_perms):
    reader = user_with_perms("communications.view_communication")
    other = user_with_perms()
    migrate([("credentials", "0001_api_keys_and_identities")])
    assert table_exists("credentials_apikey")
    reader_key = drf_key()
    other_key = reader_key[:8] + drf_key()[8:]  # two tokens alike in their first 8 characters
    created = timezone.now() - dt.timedelta(days=400)
    with connection.cursor() as cursor:
        cursor.execute(DRF_TOKEN_TABLE)
        for name in DRF_MIGRATIONS:
            cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('authtoken', %s, now())", [name])
        for key, user in ((reader_key, reader), (other_key, other)):
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)", [key, created, user.pk]
            )

    migrate(None)

    keys = {key.user_id: key for key in ApiKey.objects.all()}
    assert set(keys) == {reader.pk, other.pk}
    assert keys[reader.pk].key_hash == hashlib.sha256(reader_key.encode()).hexdigest()
    assert keys[reader.pk].prefix == reader_key[:8]
    assert keys[other.pk].prefix.startswith(other_key[:8]) and keys[other.pk].prefix != keys[reader.pk].prefix
    assert keys[reader.pk].name == "DRF token (migrated)"
    assert keys[reader.pk].date_created == created
    assert keys[reader.pk].date_expires is None
    # No plain-text copy left behind, and no record of an app that is gone.
    assert not table_exists("authtoken_token")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'authtoken'")
        assert cursor.fetchone() == (0,)

    url = f"{live_server.url}/v3/communications"
    response = requests.get(url, headers={"Authorization": f"Token {reader_key}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []
    response = requests.get(url, headers={"Authorization": f"Token {other_key}"}, timeout=10)
    assert response.status_code == 403  # authenticated: the user just lacks the permission
    wrong = reader_key[:-1] + ("0" if reader_key[-1] != "0" else "1")
    response = requests.get(url, headers={"Authorization": f"Token {wrong}"}, timeout=10)
    assert response.status_code == 401

    migrate([("credentials", "0001_api_keys_and_identities")])  # backwards: the keys stay, and work
    migrate(None)
    assert ApiKey.objects.count() == 2
    assert requests.get(url, headers={"Authorization": f"Token {reader_key}"}, timeout=10).status_code == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_database_without_drf_tokens_migrates_to_no_keys():
    migrate([("credentials", "0001_api_keys_and_identities")])
    assert not table_exists("authtoken_token")
    migrate(None)
    assert not ApiKey.objects.exists()
