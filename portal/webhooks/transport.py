"""Sending one webhook request: resolve the host, refuse loopback and link-local addresses
(unless allowed), connect to a checked address (no second DNS lookup), never follow redirects,
read only the first bytes of the answer, and stay within the timeout.

Plain values in, a `DeliveryOutcome` out; the only I/O is the request itself.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

EXCERPT_BYTES = 2048
USER_AGENT = "BaseImagePortal-Webhooks/1.0"
# Answers that say "try again later"; others (3xx, the rest of 4xx) will not change.
RETRY_STATUSES = frozenset({408, 425, 429})


class AddressRefused(Exception):  # noqa: N818 - the domain's name
    """The URL's host is, or resolves to, an address deliveries may not reach."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt did: success (2xx), status, time, answer excerpt, error, retry."""

    succeeded: bool
    status_code: int | None
    duration_ms: int
    excerpt: str
    error: str
    retry: bool


def address_refusal(address: str, *, allow_local: bool) -> str:
    """Why deliveries may not reach `address` ("" when they may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return _("%(ip)s is not a unicast address") % {"ip": ip}
    if allow_local:
        return ""
    if ip.is_loopback:
        return _("%(ip)s is a loopback address") % {"ip": ip}
    if ip.is_link_local:
        return _("%(ip)s is a link-local address (e.g. a cloud metadata endpoint)") % {"ip": ip}
    return ""


def url_problem(url: str, *, allow_local: bool) -> str:
    """What is wrong with `url` as a webhook target, without DNS ("" when nothing)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return _("not a URL: %(error)s") % {"error": exc}
    if parts.scheme not in ("http", "https"):
        return _("the URL must start with http:// or https://")
    if not parts.hostname:
        return _("the URL has no host")
    if parts.username or parts.password:
        return _("the URL must not carry credentials; the signature authenticates the portal")
    if parts.fragment:
        return _("the URL must not have a #fragment")
    if port == 0:
        return _("port 0 is not a port")
    host = parts.hostname
    if not allow_local and (host == "localhost" or host.endswith(".localhost")):
        return _("localhost is a loopback address")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return ""  # a name: checked at each delivery, on every address it resolves to
    return address_refusal(host, allow_local=allow_local)


def resolve_checked(host: str, port: int, *, allow_local: bool) -> list[str]:
    """Every address of `host`, each checked; one refused address refuses the host.

    Raises:
        AddressRefused: one of the addresses is refused, or the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressRefused(f"{host} does not resolve: {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    for address in addresses:
        refusal = address_refusal(address, allow_local=allow_local)
        if refusal:
            raise AddressRefused(
                f"{host} resolves to {address}: {refusal}; deliveries there are refused"
            )
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a checked address, with the URL's host in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is verified for the URL's host."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def deliver(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_local: bool,
) -> DeliveryOutcome:
    """POST `body` to `url` once; never raises for what the network or the receiver does."""
    started = time.monotonic()

    def outcome(
        *,
        ok: bool = False,
        status: int | None = None,
        excerpt: str = "",
        error: str = "",
        retry: bool = True,
    ) -> DeliveryOutcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return DeliveryOutcome(ok, status, elapsed, excerpt, error[:500], retry)

    problem = url_problem(url, allow_local=allow_local)
    if problem:
        return outcome(error=f"Refused: {problem}.", retry=False)
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        addresses = resolve_checked(host, port, allow_local=allow_local)
    except AddressRefused as exc:
        return outcome(error=f"Refused: {exc}.", retry="does not resolve" in str(exc))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    last_error = ""
    for address in addresses:
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            break
        connection: http.client.HTTPConnection = (
            _PinnedHTTPSConnection(host, port, address, remaining, ssl.create_default_context())
            if https
            else _PinnedHTTPConnection(host, port, address, remaining)
        )
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={**headers, "User-Agent": USER_AGENT, "Content-Length": str(len(body))},
            )
            response = connection.getresponse()
            excerpt = _read_excerpt(response, started + timeout)
            status = response.status
        except TimeoutError:
            return outcome(error=f"Timed out after {timeout:g} s waiting for {host}.")
        except (OSError, http.client.HTTPException) as exc:
            last_error = f"{address}: {type(exc).__name__}: {exc}"
            continue  # the next address, if any
        finally:
            connection.close()
        if 200 <= status < 300:
            return outcome(ok=True, status=status, excerpt=excerpt)
        if 300 <= status < 400:
            location = response.getheader("Location", "")
            return outcome(
                status=status,
                excerpt=excerpt,
                error=f"HTTP {status}: redirects are not followed (Location: {location[:200]}).",
                retry=False,
            )
        return outcome(
            status=status,
            excerpt=excerpt,
            error=f"HTTP {status} {response.reason}"[:200],
            retry=status >= 500 or status in RETRY_STATUSES,
        )
    return outcome(error=f"Could not connect to {host}: {last_error or 'timed out'}.")


def _read_excerpt(response: http.client.HTTPResponse, deadline: float) -> str:
    """Up to EXCERPT_BYTES of the answer, stopping at the deadline (a slow drip)."""
    chunks: list[bytes] = []
    size = 0
    while size < EXCERPT_BYTES and time.monotonic() < deadline:
        chunk = response.read1(EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")
