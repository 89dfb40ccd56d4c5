"""ApiToken.kind: fetch tokens become a kind of their own, no longer recognised by their name."""

from django.db import migrations, models

# The shape environment_fetch_token_create gave fetch tokens before `kind` existed.
FETCH_NAME = r"^fetch-.+-[0-9]{8}-[0-9]{6}-[0-9]{6}$"


def mark_fetch_tokens(apps, schema_editor):
    ApiToken = apps.get_model("portal", "ApiToken")
    candidates = ApiToken.objects.filter(team__is_platform=True, name__regex=FETCH_NAME)
    ids = [t.pk for t in candidates if t.scopes == ["binaries:read"]]
    ApiToken.objects.filter(pk__in=ids).update(kind="fetch")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0004_job_process_group"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="kind",
            field=models.CharField(
                choices=[("api", "API"), ("fetch", "Fetch (binary download only)")],
                default="api",
                max_length=8,
            ),
        ),
        migrations.RunPython(mark_fetch_tokens, migrations.RunPython.noop),
    ]
