from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Supervisors"
# Showroom sales managers: read everything about communications, their attempts and history,
# and the reports and the dashboard (communications.view_reports); they change nothing.
PERMISSIONS = [
    ("communications", "view_communication"),
    ("communications", "view_communicationhistory"),
    ("communications", "view_attempt"),
    ("communications", "view_reports"),
    ("dicts", "view_communicationmethod"),
]


def create_group(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the group can hold them.
    for app_label in ("communications", "dicts"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(permission_model.objects.get(content_type__app_label=app_label, codename=codename))


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0009_attempts_and_lead_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
