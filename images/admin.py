from django.contrib import admin

from .models import BaseImage, ImageVersion, Registry


@admin.register(Registry)
class RegistryAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "tls_verify", "is_default"]


@admin.register(BaseImage)
class BaseImageAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "os_family", "os_version", "status", "eol_date"]
    list_filter = ["kind", "os_family", "status"]
    search_fields = ["name", "toolchain"]


@admin.register(ImageVersion)
class ImageVersionAdmin(admin.ModelAdmin):
    list_display = ["base_image", "tag", "digest", "state", "arch", "size"]
    list_filter = ["state"]
    readonly_fields = ["digest"]
