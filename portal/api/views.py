"""API views of the portal package: jobs."""

from django.db.models import QuerySet
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..actors import Actor
from ..jobs import job_cancel
from ..models import Job
from ..selectors import job_list_for_actor
from .serializers import JobSerializer


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs the caller (or its team) started; platform admins see all."""

    serializer_class = JobSerializer
    required_scopes = {"*": None}

    def get_queryset(self) -> QuerySet[Job]:
        jobs = job_list_for_actor(Actor.from_request(self.request))
        if self.action == "retrieve":
            return jobs.defer(None)
        return jobs

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a queued or running job (409 when it already ended)."""
        job = self.get_object()
        actor = Actor.from_request(request)
        mine = (actor.user is not None and job.created_by_id == actor.user.pk) or (
            actor.token is not None and job.created_by_token_id == actor.token.pk
        )
        if not (mine or actor.is_platform_admin):
            raise exceptions.PermissionDenied(
                "Only who started a job or a platform admin may cancel it."
            )
        job = job_cancel(job=job, actor=actor)
        return Response(JobSerializer(job, context={"request": request}).data)
