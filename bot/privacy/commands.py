"""The privacy commands of `herald`: customer export / forget, and purge-conversations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.settings import get_settings


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    customer = sub.choices["customer"]
    actions = customer.add_subparsers(dest="customer_command", required=True)
    export = actions.add_parser("export", help="write everything Herald holds about them as JSON")
    export.add_argument("customer_id", type=int)
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    forget = actions.add_parser(
        "forget", help="erase their personal data and conversations; they are never contacted again"
    )
    forget.add_argument("customer_id", type=int)
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge = sub.choices["purge-conversations"]
    purge.add_argument(
        "--days",
        type=int,
        default=None,
        help="keep this many days of conversations (default: HERALD_RETENTION_DAYS, 90)",
    )


def customer_command(args: argparse.Namespace) -> int:
    # Imported here so `herald --help` stays fast and quiet.
    from bot.db import session_scope
    from bot.db.session import get_engine
    from bot.privacy.export import UnknownCustomer, export_customer
    from bot.privacy.forget import forget_customer

    settings = get_settings()
    tracker = get_engine(settings.tracker_database_url)
    try:
        if args.customer_command == "export":
            with session_scope() as session:
                document = export_customer(session, tracker, args.customer_id)
            text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text + "\n")
                args.out.chmod(0o600)
                print(f"wrote customer {args.customer_id}'s data to {args.out}", file=sys.stderr)
            else:
                print(text)
            return 0
        if not args.yes and sys.stdin.isatty():
            answer = input(
                f"Erase customer {args.customer_id}'s personal data and conversations "
                "for good? Type 'forget' to go on: "
            )
            if answer.strip() != "forget":
                print("nothing was changed", file=sys.stderr)
                return 1
        with session_scope() as session:
            report = forget_customer(session, tracker, args.customer_id)
        print(report.summary())
        return 0
    except UnknownCustomer:
        print(f"no customer with id {args.customer_id}", file=sys.stderr)
        return 2


def purge_command(args: argparse.Namespace) -> int:
    from bot.db import session_scope
    from bot.db.session import get_engine
    from bot.privacy.retention import purge_conversations

    settings = get_settings()
    days = args.days if args.days is not None else settings.retention_days
    if days < 1:
        print("--days must be at least 1", file=sys.stderr)
        return 2
    with session_scope() as session:
        report = purge_conversations(session, get_engine(settings.tracker_database_url), days)
    print(report.summary())
    return 0
