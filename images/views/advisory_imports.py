"""UI of advisory imports (platform admins): the imports with their counts and errors, and a
form that starts one from an upload, a server path or a mirror URL (the same service as the API)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views import View

from portal.actors import Actor
from portal.views import PlatformAdminRequiredMixin

from ..models import AdvisoryImport
from ..services.advisories import AdvisoryUploadTooLarge, advisory_import_start


class AdvisoryImportForm(forms.Form):
    """One source: an OSV JSON file or zip, a path inside the import roots, or a mirror URL."""

    file = forms.FileField(
        label=gettext_lazy("File"),
        required=False,
        help_text=gettext_lazy("An OSV JSON file (one record or a list) or an OSV zip."),
    )
    path = forms.CharField(
        label=gettext_lazy("Path"),
        required=False,
        max_length=1000,
        help_text=gettext_lazy("Or a file or directory on the server."),
    )
    url = forms.CharField(
        required=False,
        max_length=1000,
        label=gettext_lazy("URL"),
        help_text=gettext_lazy("Or an internal mirror URL."),
    )


class AdvisoryImportListView(PlatformAdminRequiredMixin, View):
    """The advisory imports, newest first, and the form that starts one."""

    template_name = "images/advisoryimport_list.html"

    def _render(
        self, request: HttpRequest, form: AdvisoryImportForm, status: int = 200
    ) -> HttpResponse:
        imports = AdvisoryImport.objects.select_related("job", "created_by").defer("changed_keys")
        page = Paginator(imports, 25).get_page(request.GET.get("page"))
        context: dict[str, Any] = {
            "page": page,
            "query": "",
            "form": form,
            "roots": settings.PORTAL_ADVISORY_IMPORT_ROOTS,
            "mirrors": settings.PORTAL_ADVISORY_MIRRORS,
            "upload_max": settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, AdvisoryImportForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH") or "0"
        limit = settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES
        if length.isdigit() and int(length) > limit + 64 * 1024:
            form = AdvisoryImportForm()
            form.add_error(
                None,
                gettext("The upload is %(size)s bytes; the limit is %(limit)s bytes.")
                % {"size": length, "limit": limit},
            )
            return self._render(request, form, status=413)
        try:
            form = AdvisoryImportForm(request.POST, request.FILES)
            valid = form.is_valid()
        except RequestDataTooBig:
            form = AdvisoryImportForm()
            form.add_error(
                None,
                gettext("The request is over the limit of %(limit)s bytes.") % {"limit": limit},
            )
            return self._render(request, form, status=413)
        if not valid:
            return self._render(request, form, status=400)
        data = form.cleaned_data
        try:
            job = advisory_import_start(
                actor=Actor(user=request.user),
                upload=data.get("file"),
                path=data.get("path") or None,
                url=data.get("url") or None,
            )
        except AdvisoryUploadTooLarge as exc:
            form.add_error("file", str(exc))
            return self._render(request, form, status=413)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
            return self._render(request, form, status=400)
        messages.success(
            request, gettext("Advisory import started: job #%(job)s.") % {"job": job.pk}
        )
        return redirect("job-detail", pk=job.pk)
