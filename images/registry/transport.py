"""The registry client's HTTP plumbing: sessions, basic or Bearer authentication (tokens sent
only to the registry's own origin or configured token hosts), status checks, capped reads,
pagination; transient failures are raised as `RegistryUnavailable`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests

from .protocol import (
    _TRANSIENT_STATUS,
    MAX_LISTING_BYTES,
    PAGE_SIZE,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    _error_detail,
    parse_challenge,
)


class RegistryTransport:
    """HTTP to one registry: the session, credentials and tokens, checked and capped replies.

    `RegistryClient` builds on it (its docstring lists the arguments); nothing else should.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        timeout: float = 10,
        token_hosts: Iterable[str] = (),
    ) -> None:
        parts = urlsplit(url.strip() if isinstance(url, str) else "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(
                f"invalid registry URL {url!r}: expected http(s)://host[:port], "
                "e.g. https://registry.example.com"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise RegistryError(f"invalid registry URL {url!r}: give the host only, no path")
        if (username is None) != (password is None):
            raise RegistryError("give both a registry username and a password, or neither")
        if not timeout > 0:
            raise RegistryError(f"timeout must be positive, got {timeout!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc
        self._token_hosts = frozenset(h.strip().lower() for h in token_hosts if h.strip())
        self.timeout = timeout
        self._credentials = (username, password or "") if username is not None else None
        self._session = requests.Session()
        self._session.verify = verify
        self._session.headers["User-Agent"] = "base-image-portal/1"
        self._basic = False
        self._tokens: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RegistryClient({self.url!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _may_send_credentials(self, realm: str) -> bool:
        """Whether the token service at `realm` may see the registry credentials.

        Yes for the registry's own origin (the scheme and host the admin configured: on a
        plain-http registry the credentials already travel that way), and for https on the
        registry's host or a configured token host. Never for plain http to any other host,
        and never for another host that nobody configured: a challenge alone must not be able
        to send the credentials elsewhere.
        """
        parts = urlsplit(realm)
        host = parts.netloc.lower()
        if f"{parts.scheme}://{host}" == self.url.lower():
            return True
        if parts.scheme != "https":
            return False
        return (
            host in self._token_hosts
            or (parts.hostname or "") in self._token_hosts
            or (host == self.host.lower())
        )

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(f"{self.host}: Bearer challenge without a usable realm: {realm!r}")
        # Elsewhere the token is asked for anonymously (enough for public pulls).
        auth = self._credentials if self._may_send_credentials(realm) else None
        query = {"service": params["service"]} if params.get("service") else {}
        if scope:
            query["scope"] = scope
        try:
            response = self._session.get(realm, params=query, auth=auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryUnavailable(
                f"{self.host}: token service {realm} unreachable: {exc}"
            ) from exc
        if response.status_code in _TRANSIENT_STATUS:
            raise RegistryUnavailable(
                f"{self.host}: token service answered HTTP {response.status_code}"
            )
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"{self.host}: token service refused the credentials"
                f" (HTTP {response.status_code}) for scope {scope or '(none)'}"
            )
        if response.status_code != 200:
            raise RegistryError(f"{self.host}: token service answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RegistryError(f"{self.host}: token service returned invalid JSON") from exc
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.host}: token service returned no token")
        return token

    def _send(
        self,
        url: str,
        headers: dict[str, str],
        scope: str,
        *,
        method: str = "GET",
        data: bytes | None = None,
    ) -> requests.Response:
        auth = self._credentials if self._basic else None
        if scope in self._tokens:
            headers = {**headers, "Authorization": f"Bearer {self._tokens[scope]}"}
        try:
            return self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                auth=auth,
                timeout=self.timeout,
                stream=True,
                allow_redirects=method == "GET",
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryError(f"{self.host}: TLS verification failed: {exc}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RegistryUnavailable(f"{self.host}: registry unreachable: {exc}") from exc
        except requests.RequestException as exc:
            raise RegistryError(f"{self.host}: request failed: {exc}") from exc

    def _get(
        self,
        path_or_url: str,
        *,
        scope: str,
        what: str,
        accept: str | None = None,
        method: str = "GET",
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> requests.Response:
        """GET (or `method`) with authentication; raise the right error for any non-2xx."""
        url = urljoin(self.url + "/", path_or_url)
        if urlsplit(url).netloc != self.host:
            raise RegistryError(f"{self.host}: refusing to follow a link to another host: {url}")
        headers = {"Accept": accept} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        response = self._send(url, headers, scope, method=method, data=data)
        if response.status_code == 401:
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            response.close()
            if scheme == "bearer":
                self._tokens[scope] = self._fetch_token(params, params.get("scope", scope))
                response = self._send(url, headers, scope, method=method, data=data)
            elif scheme == "basic" and self._credentials and not self._basic:
                self._basic = True
                response = self._send(url, headers, scope, method=method, data=data)
        return self._check(response, what)

    def _check(self, response: requests.Response, what: str) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        detail = _error_detail(response)
        response.close()
        suffix = f": {detail}" if detail else ""
        if status in _TRANSIENT_STATUS:
            raise RegistryUnavailable(
                f"{self.host}: {what}: HTTP {status}, try again later{suffix}"
            )
        if status == 404:
            raise RegistryNotFound(f"{self.host}: {what}: not found (HTTP 404){suffix}")
        if status == 401:
            hint = "credentials refused" if self._credentials else "authentication required"
            raise RegistryAuthError(f"{self.host}: {what}: {hint} (HTTP 401){suffix}")
        if status == 403:
            raise RegistryAuthError(f"{self.host}: {what}: access denied (HTTP 403){suffix}")
        raise RegistryError(f"{self.host}: {what}: unexpected HTTP {status}{suffix}")

    def _read(self, response: requests.Response, limit: int, what: str) -> bytes:
        """Read a body of at most `limit` bytes."""
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(65536):
                total += len(chunk)
                if total > limit:
                    raise RegistryError(f"{self.host}: {what}: response larger than {limit} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"{self.host}: {what}: connection broke: {exc}") from exc
        finally:
            response.close()
        return b"".join(chunks)

    def _json(self, data: bytes, what: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise RegistryError(f"{self.host}: {what}: invalid JSON ({exc})") from exc

    def _paginate(self, path: str, key: str, scope: str, what: str, limit: int) -> Iterator[str]:
        url: str | None = f"{path}?n={PAGE_SIZE}"
        seen_urls: set[str] = set()
        count = 0
        while url:
            if url in seen_urls:
                raise RegistryError(f"{self.host}: {what}: pagination loops back to {url}")
            seen_urls.add(url)
            response = self._get(url, scope=scope, what=what)
            link = response.links.get("next", {}).get("url")
            body = self._json(self._read(response, MAX_LISTING_BYTES, what), what)
            if not isinstance(body, dict):
                raise RegistryError(f"{self.host}: {what}: expected a JSON object")
            names = body.get(key) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise RegistryError(f"{self.host}: {what}: '{key}' is not a list of names")
            for name in names:
                count += 1
                if count > limit:
                    raise RegistryError(
                        f"{self.host}: {what}: more than {limit} entries; refusing to read more"
                    )
                yield name
            url = link
