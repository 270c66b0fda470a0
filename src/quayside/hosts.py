"""The Host allow-list of ``quayside server`` and ``quayside serve``: DNS rebinding gets 400.

A page on ``evil.example`` whose name the attacker then points at 127.0.0.1 can make the
browser send requests to a server on this machine; the browser still sends
``Host: evil.example``, so a server that answers only to the names it is reached under
refuses them. A browser always sends ``Host``; a request without one (HTTP/1.0 from a
script) is no rebinding and passes.

The defaults follow the address the server is bound to:

- loopback (``127.0.0.1``, ``::1``, ``localhost``): the loopback names only;
- another address: that address and the loopback names;
- every interface (``0.0.0.0``, ``::``): any name, because such a server is reached under
  addresses and names it cannot know (a pod IP for Kubernetes probes, a Service's DNS name,
  a load balancer's); ``--allowed-hosts`` narrows it.

A list given (``--allowed-hosts``) adds to the loopback names, which stay allowed: they are what
the health checks on the machine itself send (the image's ``HEALTHCHECK``, ``quayside deploy``
waiting for readiness), and never what a rebinding page sends (its Host is the attacker's name).
Names match case-insensitively with any port; ``*`` allows any Host. Shared by both servers,
which answer a refused request with :class:`~quayside.errors.InvalidHostError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from quayside.errors import InvalidHostError, UsageError

HOST_HEADER = b"host"
ALLOWED_HOSTS_ENV = "QUAYSIDE_ALLOWED_HOSTS"
ANY_HOST = "*"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "[::]", ""})
_LOOPBACK_BINDS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_SHOWN = 100


def parse_allowed_hosts(text: str | None) -> tuple[str, ...] | None:
    """``--allowed-hosts`` (comma-separated names) as a tuple; None (the default) for an empty value."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if name != ANY_HOST and (" " in name or "/" in name or not name.isascii()):
            raise UsageError(
                f"--allowed-hosts: '{name}' is not a host name or address (e.g. models.example.com)"
            )
    return names or None


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """What a server bound to ``bind_host`` answers to when no allow-list is given (the module says why)."""
    host = bind_host.strip().lower()
    if host in WILDCARD_ADDRESSES:
        return (ANY_HOST,)
    if host in _LOOPBACK_BINDS or host.startswith("127."):
        return tuple(dict.fromkeys((*LOOPBACK_NAMES, host)))
    return (host, *LOOPBACK_NAMES)


def _bare(name: str) -> str:
    """A configured name as a Host's name part compares: lower case, IPv6 in brackets."""
    name = name.lower().rstrip(".")
    if ":" in name and not name.startswith("["):
        return f"[{name}]"  # a bare IPv6 address; in a Host header it is always bracketed
    return name


def host_name(host: bytes) -> bytes:
    """The name part of a Host header value: the port dropped, lower case, no trailing dot."""
    host = host.strip().lower()
    if host.startswith(b"["):
        end = host.find(b"]")
        return host[: end + 1] if end > 0 else host
    name, colon, port = host.rpartition(b":")
    if colon and b":" not in name and (port.isdigit() or port == b""):
        host = name
    elif colon and b":" in name:
        host = b"[" + host + b"]"  # a bare IPv6 address, as clients that forget brackets send it
    return host.rstrip(b".")


@dataclass(frozen=True)
class HostAllowList:
    """Which Host headers a server answers; :meth:`allows` is one set lookup for a name seen before."""

    names: tuple[str, ...]
    any_host: bool = field(init=False)
    _names: frozenset[bytes] = field(init=False, repr=False)
    _seen: set[bytes] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        object.__setattr__(self, "any_host", ANY_HOST in self.names)
        object.__setattr__(self, "_names", frozenset(_bare(n).encode("ascii") for n in self.names))

    @classmethod
    def for_server(cls, bind_host: str, allowed: Iterable[str] | None = None) -> HostAllowList:
        """The list a server bound to ``bind_host`` uses: ``allowed`` and the loopback names, else the default."""
        if not allowed:
            return cls(default_allowed_hosts(bind_host))
        return cls(tuple(dict.fromkeys((*allowed, *LOOPBACK_NAMES))))

    def allows(self, host: bytes | None) -> bool:
        """Whether a request with this raw Host header value (None: no header) is answered."""
        if host is None or self.any_host or host in self._seen:
            return True
        if host_name(host) not in self._names:
            return False
        if len(self._seen) < 1024:  # raw values already allowed, port and all; bounded
            self._seen.add(host)
        return True

    def refusal(self, host: bytes) -> InvalidHostError:
        shown = host.decode("latin-1")[:_SHOWN]
        return InvalidHostError(
            f"this server does not answer to Host '{shown}'; it answers to {', '.join(self.names)} "
            "(start it with --allowed-hosts to add names it is reached under)"
        )

    def describe(self) -> str:
        """One line for the start message."""
        if self.any_host:
            return "any Host header"
        return "Host " + ", ".join(self.names)


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
