"""Forms of the deployments app (input shapes; the services do the checking)."""

from __future__ import annotations

from typing import Any

from django import forms

from images.choices import ImageKind, VersionState
from images.models import ImageVersion

from .choices import BinaryState
from .models import BinaryVersion, Deployment


class BinaryUploadForm(forms.Form):
    """The UI upload: the same fields as the API's multipart upload."""

    file = forms.FileField(help_text="The binary (ELF executable, jar or script).")
    version = forms.CharField(max_length=128)
    arch = forms.CharField(
        max_length=20, initial="x86_64", help_text="x86_64/amd64, aarch64/arm64 … or noarch"
    )
    sha256 = forms.CharField(max_length=64, help_text="sha256sum of the file; checked on arrival.")
    commit = forms.CharField(max_length=64, required=False)
    build_url = forms.CharField(max_length=500, required=False)


class ReleaseCreateForm(forms.Form):
    """Create a release: optionally a new binary and/or runtime version."""

    binary_version = forms.ModelChoiceField(queryset=BinaryVersion.objects.none(), required=False)
    runtime_version = forms.ModelChoiceField(queryset=ImageVersion.objects.none(), required=False)

    def __init__(self, *args: Any, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["binary_version"].queryset = deployment.service.binary_versions.filter(
            state=BinaryState.ACTIVE
        ).select_related("service")
        self.fields["binary_version"].empty_label = "(keep the current binary)"
        self.fields["runtime_version"].queryset = ImageVersion.objects.filter(
            state=VersionState.APPROVED, base_image__kind=ImageKind.RUNTIME
        ).select_related("base_image")
        self.fields["runtime_version"].empty_label = "(keep the current runtime image)"
