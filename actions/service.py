"""Service: outages that hit the cloud services a customer's devices use, and setup guides."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.base import EventList
from actions.formatting import local_time
from actions.orders import HANDOFF_BUTTON
from bot.db import session_scope
from bot.db.models import (
    CloudService,
    Customer,
    Incident,
    IncidentKind,
    IncidentStatus,
    Order,
    OrderLine,
    OrderStatus,
    Product,
)
from bot.identity.customers import verified_customer
from bot.logging import set_conversation

logger = logging.getLogger(__name__)

# Maintenance this close ahead is worth mentioning to someone asking "is it down?".
MAINTENANCE_HORIZON = timedelta(days=7)
# Orders whose devices the customer no longer has.
GONE_STATES = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)


def owned_products(session: Session, customer: Customer) -> list[Product]:
    """The customer's devices, most recently bought first."""
    rows = session.execute(
        select(Product, Order.placed_at)
        .join(OrderLine, OrderLine.product_id == Product.id)
        .join(Order, Order.number == OrderLine.order_number)
        .where(Order.customer_id == customer.id, Order.status.not_in(GONE_STATES))
        .order_by(Order.placed_at.desc(), OrderLine.id)
    ).all()
    seen: dict[int, Product] = {}
    for product, _ in rows:
        seen.setdefault(product.id, product)
    return list(seen.values())


def named_product(session: Session, tracker: Tracker) -> Product | None:
    slug = next(tracker.get_latest_entity_values("product"), None)
    if not isinstance(slug, str) or len(slug) > 40:
        return None
    return session.scalars(select(Product).where(Product.slug == slug.strip().lower())).first()


def describe_incident(incident: Incident, names: dict[str, str], timezone: str) -> str:
    services = ", ".join(names.get(s, s) for s in incident.services)
    if incident.status is IncidentStatus.SCHEDULED:
        window = local_time(incident.starts_at, timezone)
        if incident.ends_at is not None:
            window += f" to {local_time(incident.ends_at, timezone).rsplit(', ', 1)[-1]}"
        return (
            f"Planned maintenance: {incident.title}, {window}. {incident.details} "
            f"Affects: {services}."
        )
    kind = "Outage" if incident.kind is IncidentKind.OUTAGE else "Maintenance"
    return (
        f"{kind} in progress: {incident.title}. {incident.details} Affects: {services}. "
        f"Since {local_time(incident.starts_at, timezone)}."
    )


class ActionOutageStatus(Action):
    """Ongoing incidents (and maintenance soon) on the services this customer's devices use."""

    def name(self) -> str:
        return "action_outage_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Log lines of this conversation carry its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker)

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        replies = CollectingDispatcher()
        try:
            with session_scope() as session:
                self._answer(session, replies, tracker)
        except SQLAlchemyError:
            logger.exception("database error in %s", self.name())
            dispatcher.utter_message(response="utter_status_unknown")
            return []
        dispatcher.messages.extend(replies.messages)
        return []

    def _answer(self, session: Session, dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
        now = datetime.now(UTC)
        customer = verified_customer(session, tracker.sender_id)
        timezone = customer.timezone if customer else "UTC"
        names = {s.slug: s.name for s in session.scalars(select(CloudService))}
        product = named_product(session, tracker)
        products = [product] if product else owned_products(session, customer) if customer else []
        # Anonymous visitors asking in general see everything; otherwise only what hits them.
        services = {s for p in products for s in p.cloud_services} if products else None
        incidents = session.scalars(
            select(Incident)
            .where(
                (Incident.status == IncidentStatus.ONGOING)
                | (
                    (Incident.status == IncidentStatus.SCHEDULED)
                    & (Incident.starts_at <= now + MAINTENANCE_HORIZON)
                )
            )
            .order_by(Incident.starts_at)
        ).all()
        relevant = [i for i in incidents if services is None or services.intersection(i.services)]
        ongoing = [i for i in relevant if i.status is IncidentStatus.ONGOING]
        for incident in relevant:
            text = describe_incident(incident, names, timezone)
            if products and incident.status is IncidentStatus.ONGOING:
                hit = [p.name for p in products if set(p.cloud_services) & set(incident.services)]
                text += f" It affects your {', '.join(hit)}."
            dispatcher.utter_message(text=text)
        if ongoing:
            dispatcher.utter_message(response="utter_outage_we_are_on_it")
            return
        setup = (
            {
                "title": f"Set up {product.name}",
                "payload": f'/setup_help{{"product":"{product.slug}"}}',
            }
            if product
            else {"title": "Setup help", "payload": "/setup_help"}
        )
        if services is None:
            dispatcher.utter_message(response="utter_no_outages")
        else:
            dispatcher.utter_message(
                response="utter_no_outage_for_you",
                services=", ".join(sorted(names.get(s, s) for s in services)),
            )
        dispatcher.utter_message(
            response="utter_device_offline_tips", buttons=[setup, HANDOFF_BUTTON]
        )


class ActionSetupHelp(Action):
    """The setup steps of the device named, or of the one the customer bought last."""

    def name(self) -> str:
        return "action_setup_help"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Log lines of this conversation carry its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker)

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        replies = CollectingDispatcher()
        try:
            with session_scope() as session:
                self._answer(session, replies, tracker)
        except SQLAlchemyError:
            logger.exception("database error in %s", self.name())
            dispatcher.utter_message(response="utter_setup_guides_elsewhere")
            return []
        dispatcher.messages.extend(replies.messages)
        return []

    def _answer(self, session: Session, dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
        customer = verified_customer(session, tracker.sender_id)
        owned = owned_products(session, customer) if customer else []
        product = named_product(session, tracker) or (owned[0] if owned else None)
        if product is None:
            everything = session.scalars(select(Product).order_by(Product.name)).all()
            dispatcher.utter_message(
                response="utter_which_product",
                buttons=[
                    {"title": p.name, "payload": f'/setup_help{{"product":"{p.slug}"}}'}
                    for p in everything
                ],
            )
            return
        others = [p for p in owned if p.id != product.id][:4]
        whose = "your " if any(p.id == product.id for p in owned) else "the "
        dispatcher.utter_message(
            text=f"Setting up {whose}{product.name}:\n{product.setup_guide}\n"
            f"The full guide with pictures: {product.setup_guide_url}",
            buttons=[
                *(
                    {"title": f"Set up {p.name}", "payload": f'/setup_help{{"product":"{p.slug}"}}'}
                    for p in others
                ),
                HANDOFF_BUTTON,
            ],
        )
