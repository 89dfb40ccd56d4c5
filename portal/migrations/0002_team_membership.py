"""Teams and memberships move from the deployments app to the portal (the ground floor).

State only: the tables `deployments_team` and `deployments_membership` stay as they are, with
their rows, ids and every foreign key pointing at them; 0003 renames them once the deployments
and images apps have let go of the old models.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DNS_LABEL = django.core.validators.RegexValidator(
    "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters, "
    "starting and ending with a letter or digit.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("deployments", "0002_initial"),
        ("images", "0002_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Team",
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
                        (
                            "name",
                            models.CharField(max_length=63, unique=True, validators=[DNS_LABEL]),
                        ),
                        ("display_name", models.CharField(blank=True, max_length=200)),
                        ("is_platform", models.BooleanField(default=False)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"ordering": ["name"], "db_table": "deployments_team"},
                ),
                migrations.CreateModel(
                    name="Membership",
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
                        (
                            "role",
                            models.CharField(
                                choices=[
                                    ("viewer", "Viewer"),
                                    ("developer", "Developer"),
                                    ("maintainer", "Maintainer"),
                                    ("platform-admin", "Platform admin"),
                                ],
                                default="viewer",
                                max_length=20,
                            ),
                        ),
                        (
                            "team",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to="portal.team",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "deployments_membership"},
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.UniqueConstraint(
                        fields=("team", "user"), name="membership_unique_team_user"
                    ),
                ),
                migrations.AddField(
                    model_name="team",
                    name="members",
                    field=models.ManyToManyField(
                        related_name="teams",
                        through="portal.Membership",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="apitoken",
                    name="team",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tokens",
                        to="portal.team",
                    ),
                ),
                migrations.AlterField(
                    model_name="job",
                    name="team",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="jobs",
                        to="portal.team",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
