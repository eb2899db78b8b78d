"""Outages on the services a customer's devices use, and the setup guide of their device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from actions.service import ActionOutageStatus, ActionSetupHelp, owned_products
from bot.db import session_scope
from bot.db.models import Customer, Incident, IncidentKind, IncidentStatus, Product
from tests.actions.conftest import Conversation, run_action


def start_outage(url: str, service: str, title: str) -> None:
    with session_scope(url) as session:
        session.add(
            Incident(
                kind=IncidentKind.OUTAGE,
                status=IncidentStatus.ONGOING,
                title=title,
                details="Live view does not load.",
                services=[service],
                starts_at=datetime.now(UTC) - timedelta(minutes=20),
            )
        )


def customers_by_service(url: str, service: str) -> tuple[int, int]:
    """(a customer whose devices use `service`, one whose devices do not)."""
    hit = spared = None
    with session_scope(url) as session:
        for customer in session.scalars(select(Customer).order_by(Customer.id)):
            services = {s for p in owned_products(session, customer) for s in p.cloud_services}
            if not services:
                continue
            if service in services and hit is None:
                hit = customer.id
            if service not in services and spared is None:
                spared = customer.id
    assert hit is not None and spared is not None
    return hit, spared


def test_an_outage_reaches_only_customers_whose_devices_use_the_service(live_shop: str) -> None:
    start_outage(live_shop, "camera-cloud", "Camera live view down")
    hit, spared = customers_by_service(live_shop, "camera-cloud")

    affected = run_action(ActionOutageStatus(), Conversation(f"web:{hit}", intent="outage_status"))
    assert any("Outage in progress: Camera live view down" in t for t in affected.texts)
    assert any("It affects your" in t for t in affected.texts)
    assert "utter_outage_we_are_on_it" in affected.responses

    unaffected = run_action(
        ActionOutageStatus(), Conversation(f"web:{spared}", intent="outage_status")
    )
    assert not any("Camera live view down" in t for t in unaffected.texts)
    assert "utter_no_outage_for_you" in unaffected.responses
    [services] = [
        m["services"] for m in unaffected.messages if m.get("response") == "utter_no_outage_for_you"
    ]
    assert "Camera Cloud" not in services


def test_anonymous_visitors_hear_about_every_incident_in_general_words(live_shop: str) -> None:
    start_outage(live_shop, "voice", "Voice assistants not responding")
    result = run_action(ActionOutageStatus(), Conversation("web:anon-3", intent="outage_status"))
    assert any("Voice assistants not responding" in t for t in result.texts)
    # The demo shop's maintenance in three days is mentioned too.
    assert any(
        t.startswith("Planned maintenance: Automations engine upgrade") for t in result.texts
    )
    assert not any("your" in t for t in result.texts)


def test_a_named_device_narrows_the_answer_to_its_services(live_shop: str) -> None:
    start_outage(live_shop, "voice", "Voice assistants not responding")
    result = run_action(
        ActionOutageStatus(),
        Conversation("web:anon-3", intent="outage_status", entities={"product": "indoor_camera"}),
    )
    assert not any("Voice assistants" in t for t in result.texts)
    assert "utter_no_outage_for_you" in result.responses
    assert result.buttons[0]["payload"] == '/setup_help{"product":"indoor_camera"}'


def test_no_outages_at_all(live_shop: str) -> None:
    result = run_action(ActionOutageStatus(), Conversation("web:anon-3", intent="outage_status"))
    assert result.responses == ["utter_no_outages", "utter_device_offline_tips"]


def test_outage_status_when_the_records_are_down(no_database: None) -> None:
    result = run_action(ActionOutageStatus(), Conversation("web:1", intent="outage_status"))
    assert result.responses == ["utter_status_unknown"]


def test_setup_help_for_the_device_they_bought_last(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        customer = session.get(Customer, 4)
        assert customer is not None
        latest = owned_products(session, customer)[0]
        guide, name = latest.setup_guide, latest.name
    result = run_action(ActionSetupHelp(), Conversation("web:4", intent="setup_help"))
    [text] = result.texts
    assert text.startswith(f"Setting up your {name}:") and guide in text
    assert "https://help.lumen-home.example/setup/" in text


def test_setup_help_for_a_named_device(live_shop: str) -> None:
    result = run_action(
        ActionSetupHelp(),
        Conversation("web:anon-1", intent="setup_help", entities={"product": "thermostat"}),
    )
    assert result.texts[0].startswith("Setting up the Lumen Thermostat:\n1. Switch off the heating")


def test_setup_help_without_a_device_asks_which(live_shop: str) -> None:
    result = run_action(ActionSetupHelp(), Conversation("web:anon-1", intent="setup_help"))
    assert result.responses == ["utter_which_product"]
    with session_scope(live_shop) as session:
        assert len(result.buttons) == len(session.scalars(select(Product)).all())


def test_setup_help_with_an_unknown_device_asks_which(live_shop: str) -> None:
    result = run_action(
        ActionSetupHelp(),
        Conversation("web:anon-1", intent="setup_help", entities={"product": "toaster" * 50}),
    )
    assert result.responses == ["utter_which_product"]
