"""The `herald` command: set up the database, load demo data, run the servers."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import func, select

from bot.settings import get_settings

logger = logging.getLogger("herald")

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = handler
        return handler

    return register


@command("migrate")
def migrate_command(args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    from bot.db import migrate

    migrate()
    print("database schema is up to date")
    return 0


@command("demo-data")
def demo_data_command(args: argparse.Namespace) -> int:
    """Fill an empty database with the demo shop."""
    from bot.db import migrate, session_scope
    from bot.db.demo import load_demo_data
    from bot.db.models import Customer

    migrate()
    with session_scope() as session:
        if session.scalar(select(func.count()).select_from(Customer)):
            if args.if_empty:
                print("demo data already loaded")
                return 0
            print("the database already holds customers; use an empty one", file=sys.stderr)
            return 1
        summary = load_demo_data(session, seed=args.seed, customers=args.customers)
    print(f"loaded demo shop: {summary}")
    return 0


@command("serve-api")
def serve_api_command(args: argparse.Namespace) -> int:
    """Run the app's HTTP server (web chat page, API)."""
    from bot.api.app import serve

    serve()
    return 0


@command("up")
def up_command(args: argparse.Namespace) -> int:
    """Start the whole bot (what `make run` does) and stop it cleanly on Ctrl-C."""
    from bot.stack import StackConfig, ensure_local_secrets, running_stack, train_model

    settings = get_settings()
    if args.scale or settings.mode == "scale":
        from bot.scale import up_scale

        return up_scale(settings)
    secrets = ensure_local_secrets(settings.var_dir)
    print("training the model if data or config changed…", flush=True)
    model = train_model()
    config = StackConfig(
        database_url=settings.database_url, var_dir=settings.var_dir, secrets=secrets, model=model
    )
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print("starting the action server, Rasa and the web server…", flush=True)
    with running_stack(config):
        print(
            f"\n  Herald is running. Open {config.app_url}/ to chat.\n"
            f"  Logs: {settings.var_dir / 'logs'}. Press Ctrl-C to stop.\n",
            flush=True,
        )
        stopped.wait()
        print("stopping…", flush=True)
    return 0


@command("customer")
def customer_command(args: argparse.Namespace) -> int:
    """Export or forget everything Herald holds about one customer."""
    from bot.privacy.commands import customer_command as run

    return run(args)


@command("telegram")
def telegram_command(args: argparse.Namespace) -> int:
    """Register the Telegram webhook (with its secret token), remove it, or show it."""
    from bot.channels_cli import telegram_command as run

    return run(args)


@command("purge-conversations")
def purge_conversations_command(args: argparse.Namespace) -> int:
    """Delete conversation events older than the retention period (run daily)."""
    from bot.privacy.commands import purge_command

    return purge_command(args)


@command("event")
def event_command(args: argparse.Namespace) -> int:
    """Send a business event (outage, shipment, renewal...), as POST /events would."""
    from bot.proactive.commands import event_command as run

    return run(args)


@command("dispatch")
def dispatch_command(args: argparse.Namespace) -> int:
    """Deliver the proactive messages that are due now, then exit."""
    from bot.proactive.commands import dispatch_command as run

    return run(args)


@command("worker")
def worker_command(args: argparse.Namespace) -> int:
    """Run the proactive worker: dispatch loop and periodic scans, until stopped."""
    from bot.proactive.commands import worker_command as run

    return run(args)


@command("scan")
def scan_command(args: argparse.Namespace) -> int:
    """Run the proactive scans once (renewals, failed payments, late parcels, setup tips)."""
    from bot.proactive.commands import scan_command as run

    return run(args)


@command("report")
def report_command(args: argparse.Namespace) -> int:
    """Proactive outreach per topic and channel: sent, deferred, suppressed, replied."""
    from bot.proactive.commands import report_command as run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, handler in COMMANDS.items():
        sub.add_parser(name, help=(handler.__doc__ or "").strip())
    demo = sub.choices["demo-data"]
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--customers", type=int, default=240)
    demo.add_argument("--if-empty", action="store_true", help="do nothing if already loaded")
    from bot.privacy.commands import add_arguments as add_privacy_arguments

    add_privacy_arguments(sub)
    from bot.channels_cli import add_telegram_arguments

    add_telegram_arguments(sub.choices["telegram"])
    from bot.proactive.commands import add_arguments as add_proactive_arguments

    add_proactive_arguments(sub)
    sub.choices["up"].add_argument(
        "--scale",
        action="store_true",
        help="scale-out mode (also HERALD_MODE=scale): PostgreSQL, Redis, replicas behind nginx",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from bot.logging import install as install_logging

    # Correlation ids on every line; no emails, tokens or secrets, whatever logs them.
    install_logging(logging.INFO)
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
