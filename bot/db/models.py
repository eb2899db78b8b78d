"""The support domain of a smart-home shop: customers, orders, shipments, billing, service."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Stable constraint names keep alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that comes back aware on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; Herald stores aware times only")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            from datetime import UTC

            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        Decimal: Numeric(12, 2),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the readable value, checked by a CHECK constraint rather than a native enum
    # type, so adding a state is a one-line migration on both databases.
    return Enum(
        cls,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=True,
        name=cls.__name__.lower(),
    )


class Platform(enum.StrEnum):
    WEB = "web"
    SLACK = "slack"
    TELEGRAM = "telegram"


class OrderStatus(enum.StrEnum):
    PAID = "paid"
    PACKED = "packed"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class ShipmentStatus(enum.StrEnum):
    LABEL_CREATED = "label_created"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    RETURNED = "returned"


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class PaymentStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"


class IncidentKind(enum.StrEnum):
    OUTAGE = "outage"
    MAINTENANCE = "maintenance"


class IncidentStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    ONGOING = "ongoing"
    RESOLVED = "resolved"


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Set by "forget me": the row stays so foreign keys hold, every personal field is wiped.
    forgotten_at: Mapped[datetime | None]

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="customer")
    orders: Mapped[list[Order]] = relationship(back_populates="customer")
    addresses: Mapped[list[Address]] = relationship(back_populates="customer")
    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="customer")
    tickets: Mapped[list[SupportTicket]] = relationship(back_populates="customer")
    preferences: Mapped[list[NotificationPreference]] = relationship(back_populates="customer")


class ChannelIdentity(Base):
    """A customer's account on one chat platform; only verified ones see data or get outreach."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform))
    external_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    verified: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[datetime | None]
    # Set when the platform says we can no longer reach this user (blocked the bot, left).
    unreachable_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    customer: Mapped[Customer | None] = relationship(back_populates="identities")

    @property
    def sender_id(self) -> str:
        """The Rasa conversation id of this identity."""
        return f"{self.platform.value}:{self.external_id}"


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    line1: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postcode: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    is_default: Mapped[bool] = mapped_column(default=False)

    customer: Mapped[Customer] = relationship(back_populates="addresses")

    def one_line(self) -> str:
        return f"{self.line1}, {self.postcode} {self.city}, {self.country}"


class CloudService(Base):
    """A part of Lumen Cloud that a device depends on, and that can have an outage."""

    __tablename__ = "cloud_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    price: Mapped[Decimal]
    # Numbered setup steps, one per line; what the setup tip and setup_help read.
    setup_guide: Mapped[str] = mapped_column(Text)
    setup_guide_url: Mapped[str] = mapped_column(String(300))
    # Cloud services this device needs, by slug (e.g. ["camera-cloud", "mobile-app"]).
    cloud_services: Mapped[list[Any]] = mapped_column(default=list)


class Order(Base):
    __tablename__ = "orders"

    # The order number customers see (10001, 10002, ...).
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus))
    placed_at: Mapped[datetime]
    total: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    shipping_address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id"))

    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order")
    shipments: Mapped[list[Shipment]] = relationship(back_populates="order")
    shipping_address: Mapped[Address | None] = relationship()
    refunds: Mapped[list[Refund]] = relationship(back_populates="order")


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[int] = mapped_column(ForeignKey("orders.number"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[int] = mapped_column(ForeignKey("orders.number"), index=True)
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(64))
    status: Mapped[ShipmentStatus] = mapped_column(_enum(ShipmentStatus))
    eta: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="shipments")
    events: Mapped[list[ShipmentEvent]] = relationship(
        back_populates="shipment", order_by="ShipmentEvent.at"
    )


class ShipmentEvent(Base):
    """One step of a shipment's status history, as the carrier reported it."""

    __tablename__ = "shipment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    status: Mapped[ShipmentStatus] = mapped_column(_enum(ShipmentStatus))
    at: Mapped[datetime]
    location: Mapped[str | None] = mapped_column(String(120))

    shipment: Mapped[Shipment] = relationship(back_populates="events")


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[int] = mapped_column(ForeignKey("orders.number"), index=True)
    amount: Mapped[Decimal]
    status: Mapped[RefundStatus] = mapped_column(_enum(RefundStatus))
    reason: Mapped[str | None] = mapped_column(String(300))
    requested_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="refunds")


class PaymentMethod(Base):
    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # card, paypal, sepa
    brand: Mapped[str | None] = mapped_column(String(20))
    last4: Mapped[str | None] = mapped_column(String(4))
    expires: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM
    is_default: Mapped[bool] = mapped_column(default=False)

    def label(self) -> str:
        if self.kind == "card":
            return f"{self.brand} card ending {self.last4} (expires {self.expires})"
        return {"paypal": "PayPal", "sepa": "SEPA direct debit"}.get(self.kind, self.kind)


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    plan: Mapped[str] = mapped_column(String(20))  # basic, plus, premium
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus))
    price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    started_at: Mapped[datetime]
    renews_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))

    customer: Mapped[Customer] = relationship(back_populates="subscriptions")
    payment_method: Mapped[PaymentMethod | None] = relationship()


class Invoice(Base):
    __tablename__ = "invoices"

    # Invoice numbers as customers see them: INV-204311.
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_number: Mapped[int | None] = mapped_column(ForeignKey("orders.number"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus))
    issued_at: Mapped[datetime]
    pdf_url: Mapped[str] = mapped_column(String(300))

    payments: Mapped[list[Payment]] = relationship(back_populates="invoice")


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_number: Mapped[str] = mapped_column(ForeignKey("invoices.number"), index=True)
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    amount: Mapped[Decimal]
    status: Mapped[PaymentStatus] = mapped_column(_enum(PaymentStatus))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]

    invoice: Mapped[Invoice] = relationship(back_populates="payments")
    payment_method: Mapped[PaymentMethod | None] = relationship()


class SupportTicket(Base):
    __tablename__ = "support_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    # What the customer and bot said before handoff, so the agent need not ask again.
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus))
    channel: Mapped[str | None] = mapped_column(String(16))
    sender_id: Mapped[str | None] = mapped_column(String(160))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    customer: Mapped[Customer | None] = relationship(back_populates="tickets")


class Incident(Base):
    """An outage or a maintenance window on one or more cloud services."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[IncidentKind] = mapped_column(_enum(IncidentKind))
    status: Mapped[IncidentStatus] = mapped_column(_enum(IncidentStatus))
    title: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text, default="")
    # Cloud service slugs this incident hits.
    services: Mapped[list[Any]] = mapped_column(default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class NotificationPreference(Base):
    """A customer's choice about one proactive topic (or "all"), and their quiet hours."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("customer_id", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    topic: Mapped[str] = mapped_column(String(32))
    opted_out: Mapped[bool] = mapped_column(default=False)
    # Local clock times "HH:MM"; only meaningful on the "all" row.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    customer: Mapped[Customer] = relationship(back_populates="preferences")


Index("ix_incidents_status_kind", Incident.status, Incident.kind)
