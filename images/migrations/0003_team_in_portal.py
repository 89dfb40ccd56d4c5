"""Catalog entries and requests point at `portal.Team`; policy exceptions leave for the
deployments app, where services live (deployments 0003 takes the table over).

State only: the columns and their foreign keys already point at the team table.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("images", "0002_initial"),
        ("portal", "0002_team_membership"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="baseimage",
                    name="owner_team",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="base_images",
                        to="portal.team",
                    ),
                ),
                migrations.AlterField(
                    model_name="imagerequest",
                    name="team",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="portal.team",
                    ),
                ),
                migrations.DeleteModel(name="PolicyException"),
            ],
            database_operations=[],
        ),
    ]
