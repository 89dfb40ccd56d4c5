"""API views of the portal package: jobs."""

from django.db.models import QuerySet
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..actors import Actor
from ..jobs import job_cancel
from ..models import Job
from ..selectors import job_cancel_refusal, job_list_for_actor
from .pagination import KeysetPagination
from .rows import RowListMixin
from .serializers import JobListSerializer, JobSerializer


class JobViewSet(
    RowListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The jobs of the caller's team (and its own); platform admins see all.

    Cancelling needs a developer of the job's team or a platform admin (and a token with a
    write scope); see `job_cancel_refusal`.
    """

    serializer_class = JobSerializer
    required_scopes = {"*": None}
    pagination_class = KeysetPagination
    keyset_ordering = ("-created_at", "-id")

    def get_serializer_class(self) -> type:
        return JobListSerializer if self.action == "list" else JobSerializer

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
        refusal = job_cancel_refusal(job=job, actor=actor)
        if refusal:
            raise exceptions.PermissionDenied(refusal)
        job = job_cancel(job=job, actor=actor)
        return Response(JobSerializer(job, context={"request": request}).data)
