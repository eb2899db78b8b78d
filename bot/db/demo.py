"""A realistic demo shop, deterministic from a seed: customers, orders, billing, service history."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.catalog import CLOUD_SERVICES, PLAN_PRICES, PRODUCTS
from bot.db.models import (
    Address,
    ChannelIdentity,
    CloudService,
    Customer,
    Incident,
    IncidentKind,
    IncidentStatus,
    Invoice,
    InvoiceStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Platform,
    Product,
    Refund,
    RefundStatus,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Subscription,
    SubscriptionStatus,
    SupportTicket,
    TicketStatus,
)

FIRST_NAMES = [
    "Maria",
    "Liam",
    "Aisha",
    "Noah",
    "Sofia",
    "Kenji",
    "Emma",
    "Mateo",
    "Priya",
    "Lucas",
    "Chloe",
    "Omar",
    "Hannah",
    "Diego",
    "Mei",
    "Jonas",
    "Zara",
    "Felix",
    "Amara",
    "Leo",
    "Ingrid",
    "Ravi",
    "Nora",
    "Tomasz",
    "Yuki",
    "Elena",
    "Samuel",
    "Fatima",
    "Hugo",
    "Lina",
]
LAST_NAMES = [
    "Lopez",
    "Smith",
    "Khan",
    "Müller",
    "Rossi",
    "Tanaka",
    "Johnson",
    "Garcia",
    "Patel",
    "Dubois",
    "Nguyen",
    "Haddad",
    "Schmidt",
    "Silva",
    "Chen",
    "Berg",
    "Okafor",
    "Novak",
    "Andersen",
    "Kowalski",
    "Sato",
    "Ivanova",
    "Moreau",
    "Costa",
    "Fischer",
]
# Customers live where the shop sells: spread over time zones so quiet hours matter.
TIMEZONES = (
    "Europe/Berlin",
    "Europe/London",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
)
CITIES = (
    ("Berlin", "DE", "10115"),
    ("London", "GB", "NW1 6XE"),
    ("Madrid", "ES", "28013"),
    ("New York", "US", "10001"),
    ("Chicago", "US", "60601"),
    ("Los Angeles", "US", "90012"),
    ("Tokyo", "JP", "100-0001"),
    ("Sydney", "AU", "2000"),
    ("Mumbai", "IN", "400001"),
    ("São Paulo", "BR", "01000-000"),
)
STREETS = [
    "Maple Street",
    "Harbour Road",
    "Linden Allee",
    "Calle Mayor",
    "Oak Avenue",
    "Station Road",
]
CARRIERS = ("DHL", "UPS", "FedEx", "USPS", "DPD", "Royal Mail")

# How an order in each state looks on the shipment side.
SHIPMENT_FOR_ORDER: dict[OrderStatus, ShipmentStatus | None] = {
    OrderStatus.PAID: None,
    OrderStatus.PACKED: ShipmentStatus.LABEL_CREATED,
    OrderStatus.SHIPPED: ShipmentStatus.IN_TRANSIT,
    OrderStatus.OUT_FOR_DELIVERY: ShipmentStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELIVERED: ShipmentStatus.DELIVERED,
    OrderStatus.DELAYED: ShipmentStatus.DELAYED,
    OrderStatus.CANCELLED: None,
    OrderStatus.REFUNDED: ShipmentStatus.RETURNED,
}
FIRST_ORDER_NUMBER = 10001


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    orders: int

    def __str__(self) -> str:
        return f"{self.customers} customers, {self.orders} orders"


def load_demo_data(
    session: Session, *, seed: int = 7, customers: int = 240, now: datetime | None = None
) -> DemoSummary:
    """Fill an empty database with a demo shop. Same seed and `now`, same shop."""
    if session.scalar(select(func.count()).select_from(Customer)):
        raise RuntimeError("the database already holds customers; demo data goes into an empty one")
    now = now or datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(seed)

    services = [CloudService(slug=s, name=n) for s, n in CLOUD_SERVICES.items()]
    products = [
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
    ]
    session.add_all([*services, *products])
    session.flush()

    order_number = FIRST_ORDER_NUMBER
    statuses = list(OrderStatus)
    invoice_seq = 204300
    for index in range(customers):
        customer = _customer(rng, index)
        session.add(customer)
        session.flush()
        city, country, postcode = CITIES[TIMEZONES.index(customer.timezone)]
        address = Address(
            customer_id=customer.id,
            line1=f"{rng.randint(1, 220)} {rng.choice(STREETS)}",
            city=city,
            postcode=postcode,
            country=country,
            is_default=True,
        )
        card = PaymentMethod(
            customer_id=customer.id,
            kind="card",
            brand=rng.choice(["Visa", "Mastercard", "Amex"]),
            last4=f"{rng.randint(0, 9999):04d}",
            expires=f"{now.year + rng.randint(0, 3)}-{rng.randint(1, 12):02d}",
            is_default=True,
        )
        session.add_all([address, card, *_identities(rng, customer, index)])
        session.flush()

        # Every state appears many times over: each customer's first order cycles through them.
        for n in range(1 + (index % 3 == 0)):
            status = statuses[(index + n) % len(statuses)]
            order = _order(rng, order_number, customer, address, status, products, now)
            session.add(order)
            session.flush()
            invoice_seq += 1
            session.add(_order_invoice(invoice_seq, order, card))
            order_number += 1

        if index % 2 == 0:
            invoice_seq += 1
            session.add_all(_subscription(rng, invoice_seq, customer, card, index, now))
        if index % 9 == 0:
            session.add(_ticket(rng, customer, index, now))
        session.flush()

    session.add_all(_incidents(now))
    return DemoSummary(customers=customers, orders=order_number - FIRST_ORDER_NUMBER)


def _customer(rng: random.Random, index: int) -> Customer:
    first, last = FIRST_NAMES[index % len(FIRST_NAMES)], rng.choice(LAST_NAMES)
    email_local = f"{first}.{last}".lower().replace("ü", "ue")
    return Customer(
        name=f"{first} {last}",
        email=f"{email_local}.{index + 1}@example.com",
        timezone=TIMEZONES[index % len(TIMEZONES)],
        language="en",
    )


def _identities(rng: random.Random, customer: Customer, index: int) -> list[ChannelIdentity]:
    """Every customer can use web chat; some have linked Slack or Telegram as well."""
    identities = [
        ChannelIdentity(
            platform=Platform.WEB,
            external_id=str(customer.id),
            customer_id=customer.id,
            verified=True,
        ),
    ]
    if index % 3 == 1:
        identities.append(
            ChannelIdentity(
                platform=Platform.TELEGRAM,
                external_id=str(700000000 + index * 7919),
                customer_id=customer.id,
                verified=True,
            )
        )
    if index % 3 == 2:
        identities.append(
            ChannelIdentity(
                platform=Platform.SLACK,
                external_id=f"U{index:04d}{rng.randint(100000, 999999)}",
                customer_id=customer.id,
                verified=True,
            )
        )
    return identities


def _order(
    rng: random.Random,
    number: int,
    customer: Customer,
    address: Address,
    status: OrderStatus,
    products: list[Product],
    now: datetime,
) -> Order:
    age_days = {
        OrderStatus.PAID: 0,
        OrderStatus.PACKED: 1,
        OrderStatus.SHIPPED: 2,
        OrderStatus.OUT_FOR_DELIVERY: 3,
        OrderStatus.DELAYED: 6,
        OrderStatus.DELIVERED: 9,
        OrderStatus.CANCELLED: 12,
        OrderStatus.REFUNDED: 25,
    }[status]
    placed_at = now - timedelta(days=age_days, hours=rng.randint(1, 20))
    picked = rng.sample(products, k=rng.randint(1, 3))
    lines = [
        OrderLine(product_id=p.id, quantity=rng.choice([1, 1, 1, 2]), unit_price=p.price)
        for p in picked
    ]
    total = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
    order = Order(
        number=number,
        customer_id=customer.id,
        status=status,
        placed_at=placed_at,
        total=total,
        currency="EUR",
        shipping_address_id=address.id,
        lines=lines,
    )

    shipment_status = SHIPMENT_FOR_ORDER[status]
    if shipment_status is not None:
        order.shipments.append(_shipment(rng, shipment_status, placed_at, now))
    if status is OrderStatus.REFUNDED:
        order.refunds.append(
            Refund(
                amount=total,
                status=RefundStatus.PAID,
                reason="Returned within 30 days",
                requested_at=placed_at + timedelta(days=12),
                paid_at=placed_at + timedelta(days=16),
            )
        )
    if status is OrderStatus.DELIVERED and number % 4 == 0:
        order.refunds.append(
            Refund(
                amount=lines[0].unit_price,
                status=RefundStatus.REQUESTED,
                reason="Arrived damaged",
                requested_at=now - timedelta(days=1),
                paid_at=None,
            )
        )
    return order


def _shipment(
    rng: random.Random, status: ShipmentStatus, placed_at: datetime, now: datetime
) -> Shipment:
    carrier = rng.choice(CARRIERS)
    tracking = f"{carrier[:2].upper()}{rng.randint(10**9, 10**10 - 1)}"
    shipped_at = placed_at + timedelta(days=1)
    path = [ShipmentStatus.LABEL_CREATED, ShipmentStatus.SHIPPED, ShipmentStatus.IN_TRANSIT]
    eta: datetime | None = shipped_at + timedelta(days=3)
    delivered_at = None
    match status:
        case ShipmentStatus.LABEL_CREATED:
            path, shipped_at = [ShipmentStatus.LABEL_CREATED], None  # type: ignore[assignment]
            eta = now + timedelta(days=4)
        case ShipmentStatus.OUT_FOR_DELIVERY:
            path.append(status)
            eta = now.replace(hour=18, minute=0, second=0)
        case ShipmentStatus.DELAYED:
            path.append(status)
            eta = now + timedelta(days=2)
        case ShipmentStatus.DELIVERED | ShipmentStatus.RETURNED:
            delivered_at = shipped_at + timedelta(days=2)
            path.append(ShipmentStatus.DELIVERED)
            if status is ShipmentStatus.RETURNED:
                path.append(status)
        case _:
            eta = max(eta or now, now + timedelta(days=1))
    events = [
        ShipmentEvent(
            status=s,
            at=min(placed_at + timedelta(hours=12 * (i + 1)), now),
            location=rng.choice(["Leipzig hub", "Local depot", "Sorting centre"]),
        )
        for i, s in enumerate(path)
    ]
    return Shipment(
        carrier=carrier,
        tracking_number=tracking,
        status=status,
        eta=eta,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        events=events,
    )


def _order_invoice(seq: int, order: Order, card: PaymentMethod) -> Invoice:
    invoice = Invoice(
        number=f"INV-{seq}",
        customer_id=order.customer_id,
        order_number=order.number,
        amount=order.total,
        currency=order.currency,
        status=InvoiceStatus.PAID,
        issued_at=order.placed_at,
        pdf_url=f"https://shop.lumen-home.example/invoices/INV-{seq}.pdf",
    )
    invoice.payments.append(
        Payment(
            payment_method_id=card.id,
            amount=order.total,
            status=PaymentStatus.SUCCEEDED,
            at=order.placed_at,
        )
    )
    if order.status is OrderStatus.REFUNDED:
        invoice.payments.append(
            Payment(
                payment_method_id=card.id,
                amount=-order.total,
                status=PaymentStatus.REFUNDED,
                at=order.placed_at + timedelta(days=16),
            )
        )
    return invoice


def _subscription(
    rng: random.Random,
    seq: int,
    customer: Customer,
    card: PaymentMethod,
    index: int,
    now: datetime,
) -> list[Subscription | Invoice]:
    plan = ("basic", "plus", "premium")[index % 3]
    failed = index % 20 == 0  # a handful of customers whose last payment failed
    status = SubscriptionStatus.PAST_DUE if failed else SubscriptionStatus.ACTIVE
    # Renewals spread over the next 30 days, so "renewing soon" always has customers.
    renews_at = now + timedelta(days=(index * 7) % 30 + 1, hours=rng.randint(0, 23))
    subscription = Subscription(
        customer_id=customer.id,
        plan=plan,
        status=status,
        price=PLAN_PRICES[plan],
        started_at=now - timedelta(days=200 + index),
        renews_at=renews_at,
        payment_method_id=card.id,
    )
    issued = renews_at - timedelta(days=30)
    invoice = Invoice(
        number=f"INV-{seq}",
        customer_id=customer.id,
        amount=PLAN_PRICES[plan],
        status=InvoiceStatus.OPEN if failed else InvoiceStatus.PAID,
        issued_at=issued,
        pdf_url=f"https://shop.lumen-home.example/invoices/INV-{seq}.pdf",
    )
    invoice.payments.append(
        Payment(
            payment_method_id=card.id,
            amount=PLAN_PRICES[plan],
            status=PaymentStatus.FAILED if failed else PaymentStatus.SUCCEEDED,
            failure_reason="card_declined: insufficient funds" if failed else None,
            at=issued,
        )
    )
    return [subscription, invoice]


def _ticket(rng: random.Random, customer: Customer, index: int, now: datetime) -> SupportTicket:
    closed = index % 2 == 0
    opened = now - timedelta(days=rng.randint(1, 20))
    return SupportTicket(
        customer_id=customer.id,
        subject=rng.choice(
            [
                "Camera keeps going offline",
                "Thermostat not heating",
                "Question about my invoice",
                "Doorbell chime silent",
            ]
        ),
        summary="Opened by phone.",
        status=TicketStatus.CLOSED if closed else TicketStatus.OPEN,
        channel="web",
        opened_at=opened,
        closed_at=opened + timedelta(days=1) if closed else None,
    )


def _incidents(now: datetime) -> list[Incident]:
    return [
        Incident(
            kind=IncidentKind.OUTAGE,
            status=IncidentStatus.RESOLVED,
            title="Camera live view unavailable",
            details="Live view and recordings failed to load for most cameras.",
            services=["camera-cloud"],
            starts_at=now - timedelta(days=14, hours=3),
            ends_at=now - timedelta(days=14),
            resolved_at=now - timedelta(days=14),
        ),
        Incident(
            kind=IncidentKind.MAINTENANCE,
            status=IncidentStatus.SCHEDULED,
            title="Automations engine upgrade",
            details="Schedules will run late for up to 20 minutes.",
            services=["automations"],
            starts_at=now + timedelta(days=3),
            ends_at=now + timedelta(days=3, hours=1),
            resolved_at=None,
        ),
    ]
