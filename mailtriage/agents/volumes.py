"""How much mail each group carried in the window and its baseline: the
denominators of shares and the reference delays of slowness.

One ``Store.summary`` per window, grouped by tenant, domain, transport and relay;
everything else is summed from it here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mailtriage.agents.window import Windows
from mailtriage.app.store.base import GroupBy, GroupStats, Store

GROUPS: tuple[GroupBy, ...] = ("tenant", "domain", "transport", "relay")

GroupKey = tuple[str | None, str | None, str | None, str | None]
"""(tenant, domain, transport, relay) of a group."""


def key_of(stats: GroupStats) -> GroupKey:
    """The (tenant, domain, transport, relay) of a summary group."""
    k = stats.key
    return (k.get("tenant"), k.get("domain"), k.get("transport"), k.get("relay"))


def counted(stats: GroupStats) -> int:
    """Recipients a group counts (final outcomes plus those still deferred)."""
    return stats.delivered + stats.bounced + stats.expired + stats.deferred


class Volumes:
    """Per-group counts and delays of the window and of its baseline."""

    def __init__(
        self, current: Iterable[GroupStats], baseline: Iterable[GroupStats]
    ) -> None:
        self.current = {key_of(g): g for g in current}
        self.baseline = {key_of(g): g for g in baseline}

    @classmethod
    def load(cls, store: Store, windows: Windows) -> Volumes:
        """Both windows' summaries, grouped by ``GROUPS``."""
        current = store.summary(windows.current, GROUPS).groups
        baseline = store.summary(windows.baseline, GROUPS).groups
        return cls(current, baseline)

    def recipients(self, *, domain: str | None = None) -> int:
        """Recipients counted in the window, for one domain or all."""
        return _sum(self.current, domain)

    def baseline_recipients(self, *, domain: str | None = None) -> int:
        """Recipients counted in the baseline, for one domain or all."""
        return _sum(self.baseline, domain)

    def delivering_relays(self, domain: str) -> list[str]:
        """Relays that delivered mail of ``domain`` in the window, busiest first."""
        relays: Counter[str] = Counter()
        for key, stats in self.current.items():
            if key[1] == domain and key[3] and stats.delivered:
                relays[key[3]] += stats.delivered
        return [relay for relay, _ in relays.most_common()]

    def transport_of(self, domain: str) -> str | None:
        """The transport that carried most of ``domain``'s mail in the window."""
        transports: Counter[str] = Counter()
        for key, stats in self.current.items():
            if key[1] == domain and key[2]:
                transports[key[2]] += counted(stats)
        return transports.most_common(1)[0][0] if transports else None


def _sum(groups: dict[GroupKey, GroupStats], domain: str | None) -> int:
    return sum(
        counted(stats)
        for key, stats in groups.items()
        if domain is None or key[1] == domain
    )
