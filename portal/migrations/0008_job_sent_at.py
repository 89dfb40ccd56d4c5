"""Job.sent_at: when the job's Celery message was last sent, so the reaper can send again the
message of a job still queued long after (a broker restarted without its queue)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0007_merge_apitoken_kind_anchored_validators"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="sent_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the Celery message for the job's current queued spell was last "
                "sent; the reaper sends it again when it is older than "
                "JOB_RESEND_QUEUED_AFTER_SECONDS.",
                null=True,
            ),
        ),
    ]
