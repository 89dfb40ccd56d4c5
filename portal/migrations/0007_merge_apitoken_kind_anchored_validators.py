"""Join the two branches of portal's migrations: ApiToken.kind (0005) and the anchored Team
name validator (0006), written at the same time in separate worktrees. Neither touches the
other's fields, so the order does not matter."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0005_apitoken_kind"),
        ("portal", "0006_anchored_validators"),
    ]

    operations = []
