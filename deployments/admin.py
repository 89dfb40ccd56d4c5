from django.contrib import admin

from .models import (
    BinaryVersion,
    Deployment,
    Environment,
    PolicyException,
    Release,
    Service,
)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "language", "default_mode"]
    list_filter = ["team", "language"]
    search_fields = ["name"]


@admin.register(BinaryVersion)
class BinaryVersionAdmin(admin.ModelAdmin):
    """Read-mostly: rows change only through the upload, yank and purge services."""

    list_display = ["service", "version", "arch", "state", "linkage", "min_glibc", "created_at"]
    list_filter = ["state", "arch", "file_type"]
    search_fields = ["service__name", "version", "sha256"]
    readonly_fields = [f.name for f in BinaryVersion._meta.fields]


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "namespace", "k8s_version", "delivery_strategy"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["service", "environment", "mode", "binary_version", "runtime_version"]
    list_select_related = ["service", "environment", "binary_version", "runtime_version"]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Releases are immutable: the admin only shows them."""

    list_display = ["deployment", "number", "strategy", "binary_sha256", "created_at"]
    readonly_fields = [f.name for f in Release._meta.fields]

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(PolicyException)
class PolicyExceptionAdmin(admin.ModelAdmin):
    list_display = ["service", "subject", "expires_at", "approved_by"]
    search_fields = ["service__name", "subject"]
