"""UI routes of the images app."""

from django.urls import path

from . import views

app_name = "images"

urlpatterns = [
    path("base-images/", views.BaseImageListView.as_view(), name="base-image-list"),
    path("base-images/<int:pk>/", views.BaseImageDetailView.as_view(), name="base-image-detail"),
]
