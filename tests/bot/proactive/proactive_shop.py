"""Build small, exact shops for proactive tests: customers with channels, orders and devices."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.catalog import CLOUD_SERVICES, PRODUCTS
from bot.db.models import (
    ChannelIdentity,
    CloudService,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Platform,
    Product,
    Shipment,
    ShipmentStatus,
)


def seed_catalog(session: Session) -> None:
    session.add_all([CloudService(slug=s, name=n) for s, n in CLOUD_SERVICES.items()])
    session.add_all(
        Product(
            sku=p.sku,
            slug=p.slug,
            name=p.name,
            price=p.price,
            setup_guide=p.setup_guide,
            setup_guide_url=p.setup_guide_url,
            cloud_services=list(p.services),
        )
        for p in PRODUCTS
    )
    session.flush()


def add_customer(
    session: Session,
    name: str,
    *,
    timezone: str = "Europe/Berlin",
    web: bool = True,
    telegram: str | None = None,
    slack: str | None = None,
    verified: bool = True,
) -> Customer:
    customer = Customer(
        name=name, email=f"{name.lower().replace(' ', '.')}@example.com", timezone=timezone
    )
    session.add(customer)
    session.flush()
    identities = []
    if web:
        identities.append((Platform.WEB, str(customer.id)))
    if telegram:
        identities.append((Platform.TELEGRAM, telegram))
    if slack:
        identities.append((Platform.SLACK, slack))
    session.add_all(
        ChannelIdentity(
            platform=platform, external_id=external_id, customer_id=customer.id, verified=verified
        )
        for platform, external_id in identities
    )
    session.flush()
    return customer


def add_order(
    session: Session,
    customer: Customer,
    products: tuple[str, ...],
    *,
    status: OrderStatus,
    at: datetime,
    eta: datetime | None = None,
) -> Order:
    number = (session.scalar(select(func.max(Order.number))) or 10000) + 1
    catalog = {p.slug: p for p in session.scalars(select(Product))}
    order = Order(
        number=number,
        customer_id=customer.id,
        status=status,
        placed_at=at - timedelta(days=3),
        total=sum((catalog[s].price for s in products), Decimal("0")),
        lines=[
            OrderLine(product_id=catalog[s].id, quantity=1, unit_price=catalog[s].price)
            for s in products
        ],
    )
    shipment_status = {
        OrderStatus.DELIVERED: ShipmentStatus.DELIVERED,
        OrderStatus.SHIPPED: ShipmentStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY: ShipmentStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELAYED: ShipmentStatus.DELAYED,
    }.get(status)
    if shipment_status is not None:
        order.shipments.append(
            Shipment(
                carrier="DHL",
                tracking_number=f"DH{number}000",
                status=shipment_status,
                shipped_at=at - timedelta(days=2),
                eta=eta or at + timedelta(days=1),
                delivered_at=at if status is OrderStatus.DELIVERED else None,
            )
        )
    session.add(order)
    session.flush()
    return order
