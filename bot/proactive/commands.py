"""`herald event|dispatch|worker|scan|report`: the proactive side from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.db import session_scope
from bot.proactive.events import EventError, EventKind, parse_event
from bot.proactive.policy import PolicyError, load_policy, parse_duration
from bot.settings import get_settings

if TYPE_CHECKING:
    from bot.proactive.dispatcher import DispatchStats
    from bot.proactive.worker import Worker

# `herald event <name>`: the event kind it sends, and its options -> data fields.
EVENT_COMMANDS: dict[str, tuple[EventKind, str]] = {
    "order-paid": (EventKind.ORDER_PAID, "an order was paid"),
    "shipment": (EventKind.SHIPMENT_STATUS_CHANGED, "a shipment changed state"),
    "delivered": (EventKind.DEVICE_DELIVERED, "an order's devices were delivered (setup tips)"),
    "signed-up": (EventKind.CUSTOMER_SIGNED_UP, "a customer signed up (welcome)"),
    "outage-start": (EventKind.OUTAGE_OPENED, "a cloud outage began"),
    "outage-update": (EventKind.OUTAGE_UPDATED, "news on an ongoing outage"),
    "outage-resolve": (EventKind.OUTAGE_RESOLVED, "an outage is over"),
    "maintenance": (EventKind.MAINTENANCE_SCHEDULED, "maintenance was scheduled"),
    "renewal-due": (EventKind.RENEWAL_DUE, "a subscription renews soon"),
    "payment-failed": (EventKind.PAYMENT_FAILED, "a payment failed"),
    "ticket-closed": (EventKind.TICKET_CLOSED, "a support ticket was closed (follow-up)"),
    "security": (EventKind.SECURITY_ALERT, "an account security notice"),
}
# Option name (as dest) -> event data field.
OPTION_FIELDS = {
    "order": "order_number",
    "status": "status",
    "carrier": "carrier",
    "tracking": "tracking_number",
    "eta": "eta",
    "location": "location",
    "delivered_at": "delivered_at",
    "customer": "customer_id",
    "service": "services",
    "title": "title",
    "details": "details",
    "incident": "incident_id",
    "starts_at": "starts_at",
    "ends_at": "ends_at",
    "subscription": "subscription_id",
    "invoice": "invoice_number",
    "reason": "reason",
    "ticket": "ticket_id",
    "closed_at": "closed_at",
    "message": "message",
}
OPTIONS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "order-paid": [("--order", {"type": int, "required": True})],
    "shipment": [
        ("--order", {"type": int, "required": True}),
        (
            "--status",
            {"required": True, "choices": ["shipped", "out_for_delivery", "delayed", "delivered"]},
        ),
        ("--carrier", {}),
        ("--tracking", {"help": "tracking number (needed when the order has no shipment)"}),
        ("--eta", {"help": "ISO 8601 time with offset"}),
        ("--location", {}),
    ],
    "delivered": [("--order", {"type": int, "required": True}), ("--delivered-at", {})],
    "signed-up": [("--customer", {"type": int, "required": True})],
    "outage-start": [
        ("--service", {"action": "append", "required": True, "help": "repeat for several"}),
        ("--title", {"required": True}),
        ("--details", {}),
    ],
    "outage-update": [
        ("--incident", {"type": int, "required": True}),
        ("--details", {"required": True}),
        ("--title", {}),
        ("--service", {"action": "append"}),
    ],
    "outage-resolve": [("--incident", {"type": int, "required": True}), ("--details", {})],
    "maintenance": [
        ("--service", {"action": "append", "required": True}),
        ("--title", {"required": True}),
        ("--starts-at", {"required": True, "help": "ISO 8601 time with offset"}),
        ("--ends-at", {"required": True}),
        ("--details", {}),
        ("--incident", {"type": int, "help": "reschedule this maintenance window"}),
    ],
    "renewal-due": [("--subscription", {"type": int, "required": True})],
    "payment-failed": [("--invoice", {"required": True}), ("--reason", {})],
    "ticket-closed": [("--ticket", {"type": int, "required": True}), ("--closed-at", {})],
    "security": [
        ("--customer", {"type": int, "required": True}),
        ("--message", {"required": True}),
    ],
}


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    event = sub.choices["event"]
    kinds = event.add_subparsers(dest="event_name", required=True, metavar="EVENT")
    for name, (kind, help_text) in EVENT_COMMANDS.items():
        parser = kinds.add_parser(name, help=f"{help_text} ({kind.value})")
        for flag, options in OPTIONS[name]:
            parser.add_argument(flag, **options)
        _common_event_options(parser)
    raw = kinds.add_parser("json", help="any event as JSON: {kind, data, occurred_at?, id?}")
    raw.add_argument("file", help="a JSON file, or - for standard input")
    _common_event_options(raw)

    dispatch = sub.choices["dispatch"]
    dispatch.add_argument("--once", action="store_true", help="one batch, not until idle")
    worker = sub.choices["worker"]
    worker.add_argument(
        "--port", type=int, help="health endpoint port (default HERALD_WORKER_PORT)"
    )
    worker.add_argument("--no-health", action="store_true", help="no health endpoint")
    report = sub.choices["report"]
    report.add_argument("--since", default="30d", help="how far back, e.g. 24h or 7d")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.add_argument("--plot", type=Path, help="also write a PNG chart to this file")


def _common_event_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="idempotency key: the same key twice has one effect")
    parser.add_argument("--occurred-at", help="when it happened (ISO 8601), default now")


def _event_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.event_name == "json":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError("the JSON must be an object")
        return loaded
    kind, _ = EVENT_COMMANDS[args.event_name]
    data = {
        field: getattr(args, option)
        for option, field in OPTION_FIELDS.items()
        if getattr(args, option, None) is not None
    }
    body: dict[str, Any] = {"kind": kind.value, "data": data}
    if args.occurred_at:
        body["occurred_at"] = args.occurred_at
    return body


def event_command(args: argparse.Namespace) -> int:
    """Send one business event, exactly as POST /events would."""
    from bot.api.events import ingest
    from bot.proactive.rules import IdempotencyConflict

    settings = get_settings()
    try:
        body = _event_body(args)
        event = parse_event(body, idempotency_key=args.key)
        result = ingest(
            settings.database_url, event, load_policy(settings.proactive_policy_path), "cli"
        )
    except (OSError, ValueError) as error:
        print(f"cannot read the event: {error}", file=sys.stderr)
        return 2
    except EventError as error:
        for problem in error.problems:
            print(f"{problem['field']}: {problem['error']}", file=sys.stderr)
        return 2
    except IdempotencyConflict as error:
        print(str(error), file=sys.stderr)
        return 1
    print(json.dumps(result.as_json(), indent=2))
    return 0


def _worker() -> Worker:
    from bot.proactive.worker import Worker

    return Worker(get_settings())


def dispatch_command(args: argparse.Namespace) -> int:
    """Deliver what is due now (until nothing is due, or one batch with --once)."""
    worker = _worker()

    async def run() -> DispatchStats:
        try:
            if args.once:
                return await worker.dispatcher.run_once()
            return await worker.dispatcher.run_until_idle()
        finally:
            await worker.delivery.close()

    stats = asyncio.run(run())
    print(json.dumps(vars(stats)))
    return 0


def worker_command(args: argparse.Namespace) -> int:
    """Run the proactive worker: dispatch loop and periodic scans, until stopped."""
    worker = _worker()
    settings = worker.settings
    port = None if args.no_health else (args.port or settings.worker_port)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stopping.set)
        await worker.run(settings.app_host, port)

    asyncio.run(run())
    return 0


def scan_command(args: argparse.Namespace) -> int:
    """Run the periodic scans once (renewals, failed payments, late parcels, setup tips...)."""
    from bot.proactive.worker import scan_once

    settings = get_settings()
    queued = scan_once(settings, load_policy(settings.proactive_policy_path))
    print(json.dumps(queued, indent=2))
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Per topic and channel: sent, deferred, suppressed by reason, replied, opted out."""
    from bot.proactive.dispatcher import utc_now
    from bot.proactive.reports import build_report, format_report, plot_report

    settings = get_settings()
    try:
        period = parse_duration(args.since, "--since")
    except PolicyError as error:
        print(str(error), file=sys.stderr)
        return 2
    until = utc_now()
    with session_scope(settings.database_url) as session:
        report = build_report(
            session,
            since=until - period,
            until=until,
            replied_within=load_policy(settings.proactive_policy_path).replied_within,
            tracker_url=settings.tracker_database_url or settings.database_url,
        )
    print(json.dumps(report.as_json(), indent=2) if args.json else format_report(report))
    if args.plot:
        plot_report(report, args.plot)
        print(f"chart written to {args.plot}", file=sys.stderr)
    return 0
