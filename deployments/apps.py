from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Services, binary versions, environments, deployments, releases, manifests."""

    name = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        """Let the Dockerfile check (images, a layer below) look up services and their
        policy exceptions without importing this app."""
        from images.services import dockerfile_service_resolver_register

        from .selectors import service_policy_context

        dockerfile_service_resolver_register(service_policy_context)
