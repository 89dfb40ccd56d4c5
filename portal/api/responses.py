"""Responses every app's API shares."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Job
from .serializers import JobSerializer


def job_accepted(request: Request, job: Job, /, **extra: Any) -> Response:
    """202 with the job (and `extra` fields), `Location` pointing at the job to poll."""
    return Response(
        {"job": JobSerializer(job, context={"request": request}).data, **extra},
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": reverse("api:job-detail", args=[job.pk])},
    )
