from django.db import migrations

# SPEC §3. `post` and `edo` exist but are not in use yet.
METHODS = [
    ("call", "Звонок", True),
    ("visit", "Визит", True),
    ("sms", "СМС", True),
    ("site_request", "Заявка на сайте", True),
    ("email", "Электронная почта", True),
    ("mobile_app_request", "Заявка в мобильном приложении", True),
    ("post", "Обычная почта", False),
    ("messenger", "Мессенджер", True),
    ("edo", "ЭДО", False),
]


def seed(apps, schema_editor):
    method_model = apps.get_model("dicts", "CommunicationMethod")
    for position, (code, name, is_active) in enumerate(METHODS, start=1):
        method_model.objects.update_or_create(
            code=code,
            defaults={"name": name, "is_active": is_active, "sort_order": position * 10},
        )


class Migration(migrations.Migration):
    dependencies = [("dicts", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
