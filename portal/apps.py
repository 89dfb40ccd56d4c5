from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Auth tokens, audit log and the job framework."""

    name = "portal"
    verbose_name = "Portal"
