"""Django admin of the webhooks (read-mostly: the pages and the API are the way to manage)."""

from django.contrib import admin

from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["team", "name", "url", "active", "created_at"]
    list_filter = ["active", "team"]
    exclude = ["secret_salt"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "subscription", "event_type", "state", "attempts", "created_at"]
    list_filter = ["state", "event_type"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
