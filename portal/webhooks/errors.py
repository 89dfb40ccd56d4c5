"""A delivery attempt's error in the reader's language.

The worker that delivers has no reader, so `transport.deliver` writes its error in English and
the delivery keeps it as written (the API serves it so). The sentences it writes are listed
here as templates (`gettext_noop`, so `makemessages` collects them); the delivery pages render
a stored error that one of them produces from its translated template, with the values read
back out of the English text, the way `portal.job_errors` shows a job's error. A value that is
itself a listed sentence (the refusal inside "Refused: …") is translated too; anything else (a
receiver's HTTP reason, a socket error) is shown as it is.
`tests/portal/test_webhooks_views.py` checks that every sentence transport writes is listed.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext_noop as _

from ..stored_texts import StoredTexts

# fmt: off
DELIVERY_ERROR_TEMPLATES: Sequence[str] = (  # English msgids, translated on display
    _("Refused: %(problem)s."),
    _("%(host)s does not resolve: %(error)s"),
    _("%(host)s has no address"),
    _("%(host)s resolves to %(address)s: %(refusal)s; deliveries there are refused"),
    _("Timed out after %(seconds)s s waiting for %(host)s."),
    _("HTTP %(status)s: redirects are not followed (Location: %(location)s)."),
    _("Could not connect to %(host)s: %(error)s."),
    _("timed out"),
    # what `url_problem` and `address_refusal` say (inside "Refused: …")
    _("%(ip)s is not a unicast address"),
    _("%(ip)s is a loopback address"),
    _("%(ip)s is a link-local address (e.g. a cloud metadata endpoint)"),
    _("not a URL: %(error)s"),
    _("the URL must start with http:// or https://"),
    _("the URL has no host"),
    _("the URL must not carry credentials; the signature authenticates the portal"),
    _("the URL must not have a #fragment"),
    _("port 0 is not a port"),
    _("localhost is a loopback address"),
)
# fmt: on

# "Refused: <host> resolves to <address>: <refusal>; …" nests two listed sentences deep.
_ERRORS = StoredTexts(DELIVERY_ERROR_TEMPLATES, depth=2)


def delivery_error_display(error: str) -> str:
    """The stored error in the active language (the error itself when no template makes it)."""
    return _ERRORS.display(error)
