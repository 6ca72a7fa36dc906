import django.db.models.deletion
from django.db import migrations, models

# Django's own AlterField would drop and re-add the foreign key, which re-checks every history row
# under a lock; only the index has to go.
INDEX = "communications_communicationhistory_communication_id_61ebf405"


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0006_list_filter_indexes_with_order"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="communicationhistory",
                    name="communication",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="history",
                        to="communications.communication",
                        verbose_name="communication",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    f"CREATE INDEX IF NOT EXISTS {INDEX} ON communications_communicationhistory (communication_id)",
                ),
            ],
        ),
    ]
