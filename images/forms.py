"""Forms of the images app."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext, gettext_lazy

from .choices import ImageKind, OsFamily, RecipeKind
from .policy import MAX_DOCKERFILE_BYTES


class DockerfileCheckForm(forms.Form):
    """Paste or upload a Dockerfile, optionally for a service and a purpose."""

    dockerfile = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}),
        label=gettext_lazy("Dockerfile"),
    )
    file = forms.FileField(required=False, label=gettext_lazy("…or upload a file"))
    service = forms.CharField(
        label=gettext_lazy("Service"),
        required=False,
        max_length=63,
        help_text=gettext_lazy("optional service name"),
    )
    purpose = forms.ChoiceField(
        label=gettext_lazy("Purpose"),
        choices=[
            ("service", "Service image"),
            ("runtime-recipe", "Runtime base-image recipe"),
            ("build-recipe", "Build base-image recipe"),
        ],
        initial="service",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_DOCKERFILE_BYTES:
                raise forms.ValidationError(
                    gettext("The file is %(size)s bytes; the limit is %(limit)s bytes (256 KiB).")
                    % {"size": upload.size, "limit": MAX_DOCKERFILE_BYTES}
                )
            data["text"] = upload.read(MAX_DOCKERFILE_BYTES + 1)
        elif data.get("dockerfile", "").strip():
            # Browsers send CRLF line ends from a textarea.
            data["text"] = data["dockerfile"].replace("\r\n", "\n")
        else:
            raise forms.ValidationError(gettext("Paste a Dockerfile or choose a file to upload."))
        return data


RECIPE_PLACEHOLDER = gettext_lazy(
    "Dockerfile, e.g.\nFROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 "
    "LC_ALL=en_US.utf8\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n\n"
    "or a bootstrap spec (YAML), e.g.\nsuite: bookworm\nvariant: minbase\npackages: "
    "[ca-certificates, tzdata, locales]"
)


class ImageRequestForm(forms.Form):
    """The request form: what image, which OS and toolchain, the recipe and why."""

    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=200,
        help_text=gettext_lazy("Repository name, e.g. runtime/debian-curl"),
    )
    tag = forms.CharField(
        label=gettext_lazy("Tag"), max_length=128, help_text=gettext_lazy("e.g. 12 or 12-2024.06")
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=ImageKind.choices)
    os_family = forms.ChoiceField(choices=OsFamily.choices, label=gettext_lazy("OS"))
    os_version = forms.CharField(max_length=40, required=False, label=gettext_lazy("OS version"))
    toolchain = forms.CharField(
        label=gettext_lazy("Toolchain"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("e.g. go 1.22"),
    )
    recipe_kind = forms.ChoiceField(choices=RecipeKind.choices, label=gettext_lazy("Recipe kind"))
    recipe = forms.CharField(
        label=gettext_lazy("Recipe"),
        widget=forms.Textarea(
            attrs={"rows": 14, "class": "code", "placeholder": RECIPE_PLACEHOLDER}
        ),
        strip=False,
        max_length=256 * 1024,
    )
    justification = forms.CharField(
        label=gettext_lazy("Justification"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=10_000,
    )
