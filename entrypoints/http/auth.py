"""Access control for ``/internal/*`` (SPEC 7): client address in ``INTERNAL_IP_ALLOWLIST`` (else 403)
and ``X-Internal-Token`` equal to ``INTERNAL_API_TOKEN`` by constant-time comparison (else 401)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

import attrs

from domain.errors import ConfigurationError
from entrypoints.http.errors import ApiError
from entrypoints.settings import IpNetwork, Settings

TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 - a header name, not a secret
INTERNAL_PREFIX = "/internal/"


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted_proxy_count: int) -> str | None:
    """The client as the last ``trusted_proxy_count`` proxies saw it.

    Each trusted proxy appends the address it received the request from to ``X-Forwarded-For``, so
    the client is the N-th entry from the right; entries further left are whatever the client sent and
    are never trusted. With fewer entries than trusted hops (or N = 0) the socket peer is the client.
    """
    if trusted_proxy_count <= 0 or not forwarded_for:
        return remote_addr
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if len(hops) < trusted_proxy_count:
        return remote_addr
    return hops[-trusted_proxy_count]


def address_allowed(address: str | None, allowlist: Sequence[IpNetwork]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in allowlist)


def token_matches(presented: str | None, expected: str) -> bool:
    # Bytes, so a non-ASCII header cannot make compare_digest raise; compare_digest is constant-time.
    given = (presented or "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, expected.encode("utf-8"))


@attrs.frozen
class InternalAuth:
    """The checks of one request, in order: address (403), then token (401)."""

    token: str = attrs.field(repr=False)
    allowlist: tuple[IpNetwork, ...]
    trusted_proxy_count: int

    @classmethod
    def from_settings(cls, settings: Settings) -> InternalAuth:
        if not settings.internal_api_token:
            raise ConfigurationError(
                "INTERNAL_API_TOKEN is required: the internal API refuses to start without a token "
                "(set it to a long random secret)"
            )
        return cls(settings.internal_api_token, settings.internal_ip_allowlist, settings.trusted_proxy_count)

    def check(self, remote_addr: str | None, forwarded_for: str | None, presented_token: str | None) -> None:
        self.check_address(remote_addr, forwarded_for)
        if not token_matches(presented_token, self.token):
            raise ApiError(401, "UNAUTHORIZED", f"missing or wrong {TOKEN_HEADER} header")

    def check_address(self, remote_addr: str | None, forwarded_for: str | None) -> None:
        """The allowlist alone (403): what ``/metrics`` needs, which a Prometheus server scrapes without a token."""
        address = client_address(remote_addr, forwarded_for, self.trusted_proxy_count)
        if not address_allowed(address, self.allowlist):
            raise ApiError(403, "FORBIDDEN", "client address is not in INTERNAL_IP_ALLOWLIST")
