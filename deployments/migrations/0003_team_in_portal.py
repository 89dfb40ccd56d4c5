"""Services point at `portal.Team`; Team and Membership leave this app's state; policy
exceptions (a service's waiver of a Dockerfile rule) arrive from the images app.

The table `images_policyexception` is taken over with its rows and ids and renamed; its content
type moves along, so audit entries and permissions that point at it keep their target.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_type(apps, schema_editor, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if content_type.objects.using(db).filter(app_label=target, model="policyexception").exists():
        return
    content_type.objects.using(db).filter(app_label=source, model="policyexception").update(
        app_label=target
    )


def forwards(apps, schema_editor) -> None:
    _move_content_type(apps, schema_editor, "images", "deployments")


def backwards(apps, schema_editor) -> None:
    _move_content_type(apps, schema_editor, "deployments", "images")


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0002_initial"),
        ("portal", "0002_team_membership"),
        ("images", "0003_team_in_portal"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="service",
                    name="team",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="services",
                        to="portal.team",
                    ),
                ),
                migrations.RemoveField(model_name="team", name="members"),
                migrations.DeleteModel(name="Membership"),
                migrations.DeleteModel(name="Team"),
                migrations.CreateModel(
                    name="PolicyException",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("subject", models.CharField(max_length=100)),
                        ("justification", models.TextField()),
                        ("expires_at", models.DateTimeField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "approved_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "service",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="policy_exceptions",
                                to="deployments.service",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["service", "subject"],
                        "db_table": "images_policyexception",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="policyexception", table=None),
        migrations.RunPython(forwards, backwards),
    ]
