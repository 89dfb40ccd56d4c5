"""API of advisories: CVE search, one advisory, and (mixed in) the import action."""

from rest_framework import viewsets

from .advisory_imports import AdvisoryImportActions


class AdvisoryViewSet(AdvisoryImportActions, viewsets.GenericViewSet):
    """Advisories imported from OSV records."""

    required_scopes: dict[str, str] = {}
