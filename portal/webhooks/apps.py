"""The webhooks sub-app of the portal package (its own models and migrations)."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Subscriptions, deliveries and their attempts."""

    name = "portal.webhooks"
    label = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Webhooks"
