"""The home page's route (un-namespaced `home`): the dashboard, composed by this app because
it reads both apps; `portal.urls` includes it by dotted string."""

from django.urls import path

from .views import DashboardView

urlpatterns = [path("", DashboardView.as_view(), name="home")]
