from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Auth tokens, audit log and the job framework."""

    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import schema  # noqa: F401 - registers the OpenAPI auth extension
