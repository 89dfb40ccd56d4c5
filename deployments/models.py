"""Models of the deployments app."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from .choices import Role

dns_label_validator = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters, "
    "starting and ending with a letter or digit.",
)


class Team(models.Model):
    """A group of people who own services and base images.

    A platform team (`is_platform`) may hold the platform-admin role and issue tokens with the
    `images:review` scope; service teams cannot.
    """

    name = models.CharField(max_length=63, unique=True, validators=[dns_label_validator])
    display_name = models.CharField(max_length=200, blank=True)
    is_platform = models.BooleanField(default=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"
