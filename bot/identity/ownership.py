"""Read a customer's own rows only: someone else's number looks exactly like a missing one."""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.orm import Session

from bot.db.models import Customer

logger = logging.getLogger(__name__)


class CustomerOwned(Protocol):
    @property
    def customer_id(self) -> int | None: ...


def find_owned[Row: CustomerOwned](
    session: Session, customer: Customer, model: type[Row], key: object
) -> Row | None:
    """The row with primary key `key` if this customer owns it, else None.

    A row that exists but belongs to another customer is logged as an attempt and
    returned as None, so the caller cannot answer differently than for an unknown key.
    """
    row = session.get(model, key)
    if row is None:
        return None
    if row.customer_id != customer.id:
        logger.warning(
            "refused %s lookup for another customer's row (customer %s)",
            model.__name__,
            customer.id,
        )
        return None
    return row
