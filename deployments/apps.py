from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Services, binary versions, environments, deployments, releases, manifests."""

    name = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        """Let the Dockerfile check and waivers (images, a layer below) look up services
        (their policy exceptions, their team) without importing this app."""
        from images.services import (
            dockerfile_service_resolver_register,
            waiver_service_resolver_register,
        )

        from .selectors import service_policy_context, service_team_id

        dockerfile_service_resolver_register(service_policy_context)
        waiver_service_resolver_register(service_team_id)
