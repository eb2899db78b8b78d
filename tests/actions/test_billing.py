"""Billing answers from the customer's payments, methods and invoices, and nobody else's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from actions.billing import (
    ActionCancellationFee,
    ActionCheckInvoice,
    ActionCheckPaymentMethods,
    ActionGetInvoice,
    ActionPaymentIssue,
    ActionUpdatePaymentMethod,
)
from bot.db import session_scope
from bot.db.models import Invoice, Payment, PaymentMethod, PaymentStatus, SubscriptionStatus
from tests.actions.conftest import Conversation, run_action
from tests.actions.shop import customer_with_plan, customer_with_unshipped


def an_invoice(url: str, *, skip: int = 0) -> tuple[str, str, str]:
    """(sender, invoice number, pdf url) of an order invoice."""
    with session_scope(url) as session:
        invoice = session.scalars(
            select(Invoice)
            .where(Invoice.order_number.is_not(None))
            .order_by(Invoice.number)
            .offset(skip)
        ).first()
        assert invoice is not None
        return f"web:{invoice.customer_id}", invoice.number, invoice.pdf_url


def test_a_failed_payment_is_explained_with_what_to_do(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.PAST_DUE)
    result = run_action(
        ActionPaymentIssue(), Conversation(f"web:{customer}", intent="payment_issue")
    )
    [text] = result.texts
    assert "failed" in text and "card declined (insufficient funds)" in text
    assert "your Lumen Cloud plan" in text
    assert result.responses == ["utter_payment_failed_declined"]
    assert [b["payload"] for b in result.buttons] == [
        "/update_payment_method",
        "/contact_human_agent",
    ]


def test_a_double_charge_is_found(live_shop: str) -> None:
    sender, number, _ = an_invoice(live_shop)
    with session_scope(live_shop) as session:
        invoice = session.get(Invoice, number)
        assert invoice is not None
        first = invoice.payments[0]
        invoice.payments.append(
            Payment(
                payment_method_id=first.payment_method_id,
                amount=first.amount,
                status=PaymentStatus.SUCCEEDED,
                at=first.at + timedelta(minutes=2),
            )
        )
    result = run_action(ActionPaymentIssue(), Conversation(sender, intent="payment_issue"))
    assert any(f"Invoice {number}" in t and "charged 2 times" in t for t in result.texts)
    assert "utter_duplicate_charge" in result.responses


def test_no_payment_problems_shows_the_last_good_payment(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.ACTIVE)
    result = run_action(
        ActionPaymentIssue(), Conversation(f"web:{customer}", intent="payment_issue")
    )
    assert result.responses == ["utter_no_payment_problems_last"]
    assert result.messages[0]["invoice_number"].startswith("INV-")


def test_payment_problems_of_anonymous_visitors_get_general_advice(live_shop: str) -> None:
    result = run_action(ActionPaymentIssue(), Conversation("web:anon-9", intent="payment_issue"))
    assert result.responses == ["utter_payment_issue_general", "utter_sign_in_needed"]


def test_payment_methods_accepted_and_on_file(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.ACTIVE)
    with session_scope(live_shop) as session:
        session.add(
            PaymentMethod(
                customer_id=customer,
                kind="card",
                brand="Visa",
                last4="0005",
                expires="2020-01",
                is_default=False,
            )
        )
    result = run_action(
        ActionCheckPaymentMethods(), Conversation(f"web:{customer}", intent="check_payment_methods")
    )
    assert result.responses == ["utter_payment_methods_accepted", "utter_methods_on_file"]
    methods = result.messages[1]["methods"]
    # The default comes first; the demo's own card may have expired as well.
    assert methods.split(";")[0].endswith(("(default)", "(default, expired)"))
    assert methods.split("; ")[1] == "Visa card ending 0005 (expires 2020-01) (expired)"


def test_payment_methods_accepted_for_anonymous_visitors(live_shop: str) -> None:
    anonymous = run_action(ActionCheckPaymentMethods(), Conversation("web:anon-1"))
    assert anonymous.responses == ["utter_payment_methods_accepted"]


def test_payment_methods_when_the_database_is_down_still_gives_the_policy(
    no_database: None,
) -> None:
    result = run_action(ActionCheckPaymentMethods(), Conversation("web:1"))
    assert result.responses == ["utter_payment_methods_accepted"]


def test_a_pasted_card_number_is_refused_and_the_safe_way_shown(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.PAST_DUE)
    result = run_action(
        ActionUpdatePaymentMethod(),
        Conversation(
            f"web:{customer}",
            intent="update_payment_method",
            text="new card is 4111 1111 1111 1111 exp 12/29",
        ),
    )
    assert result.responses[:2] == ["utter_no_card_numbers", "utter_update_payment_method"]
    assert "utter_open_invoice_retry" in result.responses
    assert all("4111" not in str(m) for m in result.messages)


def test_recent_invoices_with_amounts_and_states(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.PAST_DUE)
    result = run_action(
        ActionCheckInvoice(), Conversation(f"web:{customer}", intent="check_invoice")
    )
    [text] = result.texts
    assert "open (your Lumen Cloud plan)" in text and "paid (order" in text
    assert all(
        b["payload"].startswith('/get_invoice{"invoice_number":"INV-') for b in result.buttons
    )


def test_the_pdf_of_a_named_invoice(live_shop: str) -> None:
    sender, number, url = an_invoice(live_shop)
    for typed in (number, number.lower().replace("-", " "), number[4:]):
        result = run_action(
            ActionGetInvoice(),
            Conversation(sender, intent="get_invoice", entities={"invoice_number": typed}),
        )
        assert result.responses == ["utter_invoice_link"]
        assert result.messages[0]["url"] == url


def test_someone_elses_invoice_gets_exactly_the_unknown_invoice_reply(live_shop: str) -> None:
    sender, _, _ = an_invoice(live_shop)
    other_sender, other, _ = an_invoice(live_shop, skip=5)
    assert other_sender != sender
    theirs = run_action(
        ActionGetInvoice(),
        Conversation(sender, intent="get_invoice", entities={"invoice_number": other}),
    )
    unknown = run_action(
        ActionGetInvoice(),
        Conversation(sender, intent="get_invoice", entities={"invoice_number": "INV-999999"}),
    )
    assert theirs.responses == unknown.responses == ["utter_invoice_not_found"]
    assert theirs.messages[0]["invoice_number"] == other
    assert "url" not in theirs.messages[0]


def test_the_invoice_of_a_named_order_or_else_the_latest(live_shop: str) -> None:
    sender, number, _ = an_invoice(live_shop)
    with session_scope(live_shop) as session:
        order_number = session.get(Invoice, number).order_number  # type: ignore[union-attr]
    by_order = run_action(
        ActionGetInvoice(),
        Conversation(sender, intent="get_invoice", entities={"order_number": str(order_number)}),
    )
    assert by_order.messages[0]["invoice_number"] == number
    latest = run_action(ActionGetInvoice(), Conversation(sender, intent="get_invoice"))
    assert latest.responses == ["utter_invoice_link"]


def test_cancelling_is_free_for_their_unshipped_orders_and_plan(live_shop: str) -> None:
    customer = customer_with_unshipped(live_shop, 1)
    result = run_action(
        ActionCancellationFee(), Conversation(f"web:{customer}", intent="check_cancellation_fee")
    )
    assert result.responses[:2] == ["utter_cancellation_fee", "utter_order_cancel_free"]
    assert result.messages[0]["return_days"] == 30
