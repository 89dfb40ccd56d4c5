"""API action of advisory imports: `POST /api/v1/advisories/import/` (202 + job).

One source per request: a multipart `file` (an OSV JSON file or a zip), or JSON
`{"path": "/srv/osv/debian"}` (inside PORTAL_ADVISORY_IMPORT_ROOTS) or
`{"url": "https://osv-mirror.internal/Debian/all.zip"}` (under PORTAL_ADVISORY_MIRRORS).
Platform admins only (`images:review`). 400 for none or two sources, a bad path or URL;
413 for an upload over PORTAL_ADVISORY_UPLOAD_MAX_BYTES. The job's result is the summary.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.errors import PayloadTooLarge
from portal.api.responses import job_accepted

from ..services.advisories import AdvisoryUploadTooLarge, advisory_import_start

# Room for the multipart framing around the file.
MULTIPART_OVERHEAD = 64 * 1024


def _too_large(size: int | str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is {size} bytes; the limit is "
        f"{settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES} bytes (PORTAL_ADVISORY_UPLOAD_MAX_BYTES)."
    )


class AdvisoryImportActions:
    """Mixed into `AdvisoryViewSet`: adds the `import` action and its scope."""

    required_scopes: dict[str, str]

    @extend_schema(
        request={
            "multipart/form-data": OpenApiTypes.OBJECT,
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={202: OpenApiTypes.OBJECT},
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_records(self, request: Request) -> Response:
        """Start an import of OSV records (202 with the job; its result is the summary)."""
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        path = url = None
        upload = None
        if content_type == "multipart/form-data":
            length = request.META.get("CONTENT_LENGTH") or "0"
            if (
                length.isdigit()
                and int(length) > settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD
            ):
                raise _too_large(length)
            try:
                files = request._request.FILES
                form = request._request.POST
            except RequestDataTooBig as exc:
                raise _too_large(length) from exc
            except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
                raise exceptions.ParseError(
                    gettext("The multipart body cannot be read: %(exc)s") % {"exc": exc}
                ) from exc
            if len(files.getlist("file")) > 1 or set(files) - {"file"}:
                raise exceptions.ValidationError(
                    {"file": gettext("Send one file, in a multipart field named 'file'.")}
                )
            upload = files.get("file")
            path, url = form.get("path") or None, form.get("url") or None
            if upload is None and not (path or url):
                raise exceptions.ValidationError(
                    {
                        "file": gettext(
                            "Upload the OSV JSON file or zip in a multipart field named 'file'."
                        )
                    }
                )
        else:
            data = request.data
            if not isinstance(data, dict):
                raise exceptions.ParseError(
                    gettext('The body must be a JSON object: {"path": ...} or {"url": ...}.')
                )
            unknown = sorted(set(data) - {"path", "url"})
            if unknown:
                raise exceptions.ValidationError(
                    {
                        "non_field_errors": gettext(
                            "Unknown key(s) %(value)s; send one of path, url (or a multipart "
                            "'file')."
                        )
                        % {"value": ", ".join(map(repr, unknown))}
                    }
                )
            for key in ("path", "url"):
                if key in data and not isinstance(data[key], str):
                    raise exceptions.ValidationError({key: gettext("Must be a string.")})
            path, url = data.get("path") or None, data.get("url") or None
        try:
            job = advisory_import_start(
                actor=Actor.from_request(request), path=path, upload=upload, url=url
            )
        except AdvisoryUploadTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from exc
        return job_accepted(request, job, advisory_import=job.params["import_id"])
