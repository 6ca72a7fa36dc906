# The Idempotency-Key table moved from the communications app to the project floor (several apps
# use it). Only Django's state moves: the table keeps its name and its rows.

import django.core.serializers.json
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("communications", "0003_idempotency_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("scope", models.CharField(max_length=200)),
                        ("key", models.CharField(max_length=255)),
                        ("request_hash", models.CharField(max_length=64)),
                        ("date_created", models.DateTimeField()),
                        ("date_expires", models.DateTimeField(db_index=True)),
                        ("response_status", models.PositiveSmallIntegerField(null=True)),
                        (
                            "response_body",
                            models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder, null=True),
                        ),
                        ("response_location", models.CharField(blank=True, max_length=500)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "idempotency key",
                        "verbose_name_plural": "idempotency keys",
                        "db_table": "communications_idempotencykey",
                        "constraints": [
                            models.UniqueConstraint(fields=("user", "scope", "key"), name="idempotency_key_unique")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
