from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Teams, services, binary versions, environments, deployments, releases, manifests."""

    name = "deployments"
    verbose_name = "Deployments"
