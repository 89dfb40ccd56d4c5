"""Forms of the deployments app (input shapes; the services do the checking)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext, gettext_lazy

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.forms import LabelledChoiceField, model_choice_field
from portal.models import Team

from .choices import BinaryState, DeliveryStrategy, DeploymentMode, Language
from .models import BinaryVersion, Deployment, Environment, Service


def approved_runtime_versions() -> QuerySet[ImageVersion]:
    """Runtime image versions a deployment or release may use (approved ones)."""
    return (
        ImageVersion.objects.filter(state=VersionState.APPROVED, base_image__kind=ImageKind.RUNTIME)
        .select_related("base_image", "registry")
        .defer("recipe")  # a form label needs none of the Dockerfile
        .order_by("base_image__name", "-created_at")
    )


class RuntimeVersionChoiceField(LabelledChoiceField):
    """An approved runtime version, labelled `name:tag (sha256:abcdef…)`."""

    def label_rows(self, queryset: QuerySet[ImageVersion]) -> Iterable[tuple[Any, str]]:
        rows = queryset.values_list("pk", "base_image__name", "tag", "digest")
        for pk, name, tag, digest in rows:
            yield pk, f"{name}:{tag} ({digest[:19]}…)"


class BinaryVersionChoiceField(LabelledChoiceField):
    """An active binary version, labelled `version (arch, sha256 prefix)`."""

    def label_rows(self, queryset: QuerySet[BinaryVersion]) -> Iterable[tuple[Any, str]]:
        for pk, version, arch, sha256 in queryset.values_list("pk", "version", "arch", "sha256"):
            yield pk, f"{version} ({arch}, {sha256[:12]})"


class BinaryUploadForm(forms.Form):
    """The UI upload: the same fields as the API's multipart upload."""

    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("The binary (ELF executable, jar or script)."),
    )
    version = forms.CharField(label=gettext_lazy("Version"), max_length=128)
    arch = forms.CharField(
        label=gettext_lazy("Arch"),
        max_length=20,
        initial="x86_64",
        help_text=gettext_lazy("x86_64/amd64, aarch64/arm64 … or noarch"),
    )
    sha256 = forms.CharField(
        label=gettext_lazy("Sha256"),
        max_length=64,
        help_text=gettext_lazy("sha256sum of the file; checked on arrival."),
    )
    commit = forms.CharField(label=gettext_lazy("Commit"), max_length=64, required=False)
    build_url = forms.CharField(label=gettext_lazy("Build url"), max_length=500, required=False)
    built_in = forms.CharField(
        max_length=20,
        required=False,
        label=gettext_lazy("Built in"),
        help_text=gettext_lazy("The id of the build image version it was compiled in (optional)."),
    )


class ReleaseCreateForm(forms.Form):
    """Create a release: optionally a new binary and/or runtime version."""

    binary_version = BinaryVersionChoiceField(
        queryset=BinaryVersion.objects.none(), required=False, label=gettext_lazy("Binary version")
    )
    runtime_version = RuntimeVersionChoiceField(
        queryset=ImageVersion.objects.none(), required=False, label=gettext_lazy("Runtime image")
    )

    def __init__(self, *args: Any, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        binary = model_choice_field(self, "binary_version")
        binary.queryset = deployment.service.binary_versions.filter(
            state=BinaryState.ACTIVE
        ).select_related("service")
        binary.empty_label = gettext_lazy("(keep the current binary)")
        runtime = model_choice_field(self, "runtime_version")
        runtime.queryset = approved_runtime_versions()
        runtime.empty_label = gettext_lazy("(keep the current runtime image)")


class ServiceCreateForm(forms.Form):
    """Register a service of one of the user's teams (the service checks the role)."""

    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=63,
        help_text=gettext_lazy("A DNS-1123 label: lowercase letters, digits and '-'."),
    )
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"), queryset=Team.objects.none(), empty_label=None
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"), choices=Language.choices, initial=Language.OTHER
    )
    default_mode = forms.ChoiceField(
        label=gettext_lazy("Default mode"),
        choices=DeploymentMode.choices,
        initial=DeploymentMode.VOLUME,
    )
    repo_url = forms.CharField(max_length=200, required=False, label=gettext_lazy("Repository URL"))
    description = forms.CharField(
        label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )

    def __init__(self, *args: Any, teams: Iterable[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "team").queryset = Team.objects.filter(
            pk__in=[t.pk for t in teams]
        )


class EnvironmentCreateForm(forms.Form):
    """Add an environment (platform admins)."""

    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=50,
        help_text=gettext_lazy("dev, staging, prod … (a DNS-1123 label)"),
    )
    namespace = forms.CharField(label=gettext_lazy("Namespace"), max_length=63)
    k8s_version = forms.CharField(
        max_length=20,
        label=gettext_lazy("Kubernetes version"),
        initial="1.33",
        help_text=gettext_lazy("e.g. 1.33 or v1.35.2"),
    )
    delivery_strategy = forms.ChoiceField(
        label=gettext_lazy("Delivery strategy"),
        choices=DeliveryStrategy.choices,
        initial=DeliveryStrategy.HOSTPATH,
    )
    hostpath_root = forms.CharField(
        max_length=200, initial="/data/bin", label=gettext_lazy("hostPath root")
    )
    fetch_token_secret = forms.CharField(
        max_length=253,
        initial="portal-fetch-token",
        label=gettext_lazy("Fetch-token Secret"),
        help_text=gettext_lazy(
            "The Secret (key 'token') nodes and init containers download binaries with."
        ),
    )
    description = forms.CharField(
        label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )


class DeploymentCreateForm(forms.Form):
    """Put a service into an environment: the tuple its first release is rendered from.

    Text fields are parsed into the service's shapes (args with shell quoting, one
    ``NAME=value`` per env line, comma-separated ports); `deployment_create` checks the rest.
    """

    environment = forms.ModelChoiceField(
        label=gettext_lazy("Environment"), queryset=Environment.objects.none(), empty_label=None
    )
    mode = forms.ChoiceField(label=gettext_lazy("Mode"), choices=DeploymentMode.choices)
    runtime_version = RuntimeVersionChoiceField(
        queryset=ImageVersion.objects.none(),
        empty_label=None,
        label=gettext_lazy("Runtime image version"),
        help_text=gettext_lazy("Approved runtime images of the catalog, pinned by digest."),
    )
    binary_version = BinaryVersionChoiceField(
        queryset=BinaryVersion.objects.none(),
        required=False,
        label=gettext_lazy("Binary version"),
        empty_label=gettext_lazy("(none yet: choose one at the first release)"),
    )
    args = forms.CharField(
        label=gettext_lazy("Args"),
        max_length=1000,
        required=False,
        initial="-m release",
        help_text=gettext_lazy("Arguments, shell-quoted (the standard's -m release by default)."),
    )
    replicas = forms.IntegerField(
        label=gettext_lazy("Replicas"), min_value=0, max_value=1000, initial=1
    )
    cpu_request = forms.CharField(
        label=gettext_lazy("Cpu request"), max_length=20, required=False, initial="100m"
    )
    memory_request = forms.CharField(
        label=gettext_lazy("Memory request"), max_length=20, required=False, initial="128Mi"
    )
    cpu_limit = forms.CharField(label=gettext_lazy("Cpu limit"), max_length=20, required=False)
    memory_limit = forms.CharField(
        label=gettext_lazy("Memory limit"), max_length=20, required=False, initial="256Mi"
    )
    ports = forms.CharField(
        label=gettext_lazy("Ports"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("Container ports, comma-separated: 8080, 9090"),
    )
    env = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label=gettext_lazy("Environment variables"),
        help_text=gettext_lazy("One NAME=value per line."),
    )

    def __init__(self, *args: Any, service: Service, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("mode", service.default_mode)
        super().__init__(*args, **kwargs)
        model_choice_field(self, "environment").queryset = Environment.objects.exclude(
            deployments__service=service
        ).order_by("name")
        model_choice_field(self, "runtime_version").queryset = approved_runtime_versions()
        model_choice_field(self, "binary_version").queryset = service.binary_versions.filter(
            state=BinaryState.ACTIVE
        ).order_by("-created_at", "-id")

    def clean_args(self) -> list[str]:
        try:
            return shlex.split(self.cleaned_data["args"])
        except ValueError as exc:
            raise forms.ValidationError(
                gettext("Cannot split the arguments: %(exc)s.") % {"exc": exc}
            ) from exc

    def clean_ports(self) -> list[int]:
        text = self.cleaned_data["ports"].replace(",", " ").split()
        try:
            return [int(item) for item in text]
        except ValueError as exc:
            raise forms.ValidationError(gettext("Ports are numbers, e.g. 8080, 9090.")) from exc

    def clean_env(self) -> list[dict[str, str]]:
        env = []
        for number, line in enumerate(self.cleaned_data["env"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(
                    gettext("Line %(number)s is not NAME=value: %(line)r.")
                    % {"number": number, "line": line}
                )
            env.append({"name": name.strip(), "value": value})
        return env

    def resources(self) -> dict[str, str]:
        """The non-empty resource fields in the service's shape."""
        keys = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")
        return {k: self.cleaned_data[k].strip() for k in keys if self.cleaned_data[k].strip()}
