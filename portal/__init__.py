"""Base Image Portal project package: settings, Celery app, auth, audit and the job framework."""

from .celery import app as celery_app

__all__ = ("celery_app",)
