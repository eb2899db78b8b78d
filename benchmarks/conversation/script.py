"""What a simulated customer says: a support conversation, and who the customers are."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# One support conversation, in order; a customer starts again from the top when done.
# The second message names the customer's own order, so the action reads it from the
# database; the invoice and outage questions run custom actions too.
STEPS: tuple[tuple[str, str], ...] = (
    ("greet", "hi there"),
    ("order", "where is my order {order_number}?"),
    ("invoice", "can you send me the invoice for that order?"),
    ("outage", "is the camera cloud down right now?"),
    ("thanks", "great, thanks!"),
)


@dataclass(frozen=True)
class SimulatedCustomer:
    """A customer of the demo shop as a client sees them: how to sign in and their order."""

    sender: str
    order_number: int
    token: str | None = None

    def message(self, turn: int) -> tuple[str, str]:
        """(step name, text) of this customer's `turn`-th message."""
        step, template = STEPS[turn % len(STEPS)]
        return step, template.format(order_number=self.order_number)


def save_customers(customers: list[SimulatedCustomer], path: Path) -> None:
    path.write_text(json.dumps([asdict(c) for c in customers]))


def load_customers(path: Path) -> list[SimulatedCustomer]:
    return [SimulatedCustomer(**row) for row in json.loads(path.read_text())]
