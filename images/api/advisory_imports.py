"""API action of advisory imports: `POST /api/v1/advisories/import/` (202 + job)."""


class AdvisoryImportActions:
    """Mixed into `AdvisoryViewSet`."""
