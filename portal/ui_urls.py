"""UI routes of the portal package."""

from django.urls import path

from . import team_views, views

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
    path("registry-syncs/", views.RegistrySyncStartView.as_view(), name="registry-sync-start"),
    path("audit/", views.AuditListView.as_view(), name="audit-list"),
    path("tokens/", views.TokenListView.as_view(), name="token-list"),
    path("teams/", team_views.TeamListView.as_view(), name="team-list"),
    path("teams/<slug:name>/", team_views.TeamDetailView.as_view(), name="team-detail"),
]
