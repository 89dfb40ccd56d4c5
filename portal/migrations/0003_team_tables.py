"""The team and membership tables take the portal's names; their content types follow, so
audit entries and job targets that point at a team keep pointing at it."""

from django.db import migrations

MODELS = ("team", "membership")


def _move_content_types(apps, schema_editor, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if content_type.objects.using(db).filter(app_label=target, model=model).exists():
            continue
        content_type.objects.using(db).filter(app_label=source, model=model).update(
            app_label=target
        )


def forwards(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, "deployments", "portal")


def backwards(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, "portal", "deployments")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_team_membership"),
        ("deployments", "0003_team_in_portal"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="team", table=None),
        migrations.AlterModelTable(name="membership", table=None),
        migrations.RunPython(forwards, backwards),
    ]
