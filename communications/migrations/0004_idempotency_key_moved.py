# The Idempotency-Key model now lives in communications_project; its table stays where it is.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0003_idempotency_key"),
        ("communications_project", "0001_idempotency_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyKey")],
            database_operations=[],
        ),
    ]
