"""Validators shared by every app."""

import re

from django.core.validators import RegexValidator

# A Kubernetes DNS-1123 label: names of teams, services, environments and namespaces.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z"
DNS_LABEL = re.compile(DNS_LABEL_PATTERN)

dns_label_validator = RegexValidator(
    DNS_LABEL_PATTERN,
    "Use a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters, "
    "starting and ending with a letter or digit.",
)


def is_dns_label(value: str) -> bool:
    """Whether `value` is a DNS-1123 label (the whole string: no trailing newline)."""
    return DNS_LABEL.fullmatch(value) is not None
