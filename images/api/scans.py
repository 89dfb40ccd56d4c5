"""API actions of the scanner on image versions: scan (202 + job) and the SBOM download."""


class ImageVersionScanActions:
    """Mixed into `ImageVersionViewSet`."""
