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

        # A publish that supersedes a runtime version makes a draft rebase plan (images sends,
        # deployments plans: the lower layer never imports this one).
        from images.signals import image_version_superseded

        from .services.plans import on_image_version_superseded

        image_version_superseded.connect(
            on_image_version_superseded, dispatch_uid="deployments.rebase_on_supersede"
        )
