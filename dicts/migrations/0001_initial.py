from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="CommunicationMethod",
            fields=[
                ("code", models.SlugField(max_length=32, primary_key=True, serialize=False, verbose_name="code")),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                ("is_active", models.BooleanField(default=True, verbose_name="active")),
                ("sort_order", models.PositiveSmallIntegerField(default=0, verbose_name="sort order")),
            ],
            options={
                "verbose_name": "communication method",
                "verbose_name_plural": "communication methods",
                "ordering": ["sort_order", "code"],
            },
        ),
    ]
