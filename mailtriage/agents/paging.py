"""Reading many deliveries through the store's paged search, within a bound."""

from __future__ import annotations

from typing import Any

from mailtriage.app.store.base import DeliveryFilter, DeliveryItem, Scope, Store

MAX_PAGES = 5
"""Pages of ``MAX_LIMIT`` deliveries read per question; more than that many are
judged on the newest, and the caller says so."""


def deliveries_filter(scope: Scope, **filters: Any) -> DeliveryFilter:
    """A ``DeliveryFilter`` over ``scope`` that keeps its confinement."""
    query = DeliveryFilter(**scope.model_dump(), **filters)
    return query.confined_to(scope.confined)


def read_pages(store: Store, query: DeliveryFilter) -> tuple[list[DeliveryItem], bool]:
    """Up to ``MAX_PAGES`` pages of ``query``, newest first; True when more were
    left unread."""
    items: list[DeliveryItem] = []
    for _ in range(MAX_PAGES):
        page = store.deliveries(query)
        items.extend(page.items)
        if page.next_cursor is None:
            return items, False
        query = query.model_copy(update={"cursor": page.next_cursor})
    return items, True
