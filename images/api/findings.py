"""API of findings on image versions."""


class ImageVersionFindingActions:
    """Mixed into `ImageVersionViewSet`."""
