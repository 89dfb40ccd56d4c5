from django.apps import AppConfig


class ImagesConfig(AppConfig):
    """Catalog, requests, builds, scans and advisories."""

    name = "images"
    verbose_name = "Images"
