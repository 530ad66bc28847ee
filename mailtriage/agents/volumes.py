"""How much mail each route carried in the window and its baseline: the
denominators of shares and the reference delays of slowness.

A route is a recipient domain and the transport that delivered to it. Three
``Store.summary`` calls: routes in the window and in the baseline, and routes by
relay in the window (which hosts of a domain delivered).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mailtriage.agents.window import Windows
from mailtriage.app.store.base import GroupStats, Store

Route = tuple[str | None, str | None]
"""(recipient domain, transport)."""


def counted(stats: GroupStats) -> int:
    """Recipients a group counts (final outcomes plus those still deferred)."""
    return stats.delivered + stats.bounced + stats.expired + stats.deferred


def _route(stats: GroupStats) -> Route:
    return stats.key.get("domain"), stats.key.get("transport")


class Volumes:
    """Per-route counts and delays of the window and of its baseline."""

    def __init__(
        self,
        current: Iterable[GroupStats],
        baseline: Iterable[GroupStats],
        by_relay: Iterable[GroupStats] = (),
    ) -> None:
        self.current = {_route(g): g for g in current}
        self.baseline = {_route(g): g for g in baseline}
        self.by_relay = list(by_relay)

    @classmethod
    def load(cls, store: Store, windows: Windows) -> Volumes:
        """Both windows' routes, and the window's routes by relay."""
        return cls(
            store.summary(windows.current, ["domain", "transport"]).groups,
            store.summary(windows.baseline, ["domain", "transport"]).groups,
            store.summary(windows.current, ["domain", "transport", "relay"]).groups,
        )

    def recipients(self, domain: str, transport: str | None = None) -> int:
        """Recipients counted in the window for ``domain`` (by one transport)."""
        return _sum(self.current, domain, transport)

    def baseline_recipients(self, domain: str, transport: str | None = None) -> int:
        """Recipients counted in the baseline for ``domain`` (by one transport)."""
        return _sum(self.baseline, domain, transport)

    def delivering_relays(self, domain: str) -> list[str]:
        """Relays that delivered mail of ``domain`` in the window, busiest first."""
        relays: Counter[str] = Counter()
        for stats in self.by_relay:
            relay = stats.key.get("relay")
            if stats.key.get("domain") == domain and relay and stats.delivered:
                relays[relay] += stats.delivered
        return [relay for relay, _ in relays.most_common()]

    def transport_of(self, domain: str) -> str | None:
        """The transport that carried most of ``domain``'s mail in the window."""
        transports: Counter[str] = Counter()
        for (name, transport), stats in self.current.items():
            if name == domain and transport:
                transports[transport] += counted(stats)
        return transports.most_common(1)[0][0] if transports else None


def _sum(groups: dict[Route, GroupStats], domain: str, transport: str | None) -> int:
    return sum(
        counted(stats)
        for (name, via), stats in groups.items()
        if name == domain and (transport is None or via == transport)
    )
