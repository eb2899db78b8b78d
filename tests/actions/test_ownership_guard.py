"""No action reaches customer data around the verified-customer check: a static guard.

Read every module of the `actions` package and fail when:
- an action class touches the database (a model, a session, a query) without being
  built on a gateway: CustomerAction, or one of the few bases listed below, each of
  which resolves the verified customer before it hands out a session;
- anything outside those gateways opens a session or an engine itself;
- a customer's row is fetched by key without `find_owned` (`session.get(Order, n)`);
- a query on customer rows is filtered neither by the customer, nor by the conversation
  itself (`sender_id`), nor by a row already found through them
  (e.g. `Invoice.order_number == order.number`).

A new action that needs something else must be added to an allow-list here, with the
reason, in review; the behaviour of every gateway is tested in test_cross_customer.py.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rasa_sdk import Action

import actions
from bot.db.all_models import Base

# Bases that, like CustomerAction, resolve `verified_customer` first and only then use
# the session for that customer's rows. Keyed by "module.Class".
GATEWAYS: dict[str, str] = {
    "actions.base.CustomerAction": "the helper itself",
    "actions.forms.CustomerFormValidation": (
        "form validation needs rasa-sdk's validation signature; resolves the verified "
        "customer and ends the form for anyone else"
    ),
    "actions.forms.AskForOrderAction": (
        "asks which order, offering only the verified customer's own orders"
    ),
    "actions.policy.PolicyAnswer": (
        "policy answers that anyone may read, personalised only for a verified customer"
    ),
    "actions.handoff.TicketAction": (
        "anonymous visitors may open a ticket too; a verified customer's ticket is theirs"
    ),
    "actions.service.ActionOutageStatus": (
        "outages are public; the customer's own devices are added only when verified"
    ),
    "actions.service.ActionSetupHelp": (
        "setup guides are public; 'my devices' only for a verified customer"
    ),
}
# Actions that establish who the customer is, so cannot start from a verified customer.
IDENTITY_ACTIONS: dict[str, str] = {
    "actions.linking.ActionCheckLinking": "reads only this chat account's own link state",
    "actions.linking.ValidateLinkAccountForm": (
        "looks a customer up by email only to send them a code; the reply never depends on it"
    ),
}
DB_ACCESS = {"session_scope", "get_engine", "create_engine", "create_herald_engine", "sessionmaker"}
QUERY_BUILDERS = {"select", "update", "delete"}
MODELS = {mapper.class_.__name__: mapper.class_ for mapper in Base.registry.mappers}
CUSTOMER_OWNED = {name for name, model in MODELS.items() if "customer_id" in model.__table__.c}
# A row found through the customer (order.number, invoice.id, subscription.id ...).
DERIVED_FROM_OWNED_ROW = re.compile(r"\b[a-z_]+\.(?:number|id|[a-z_]+_id|[a-z_]+_number)\b")


def action_modules(package: ModuleType = actions) -> list[ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


@dataclass(frozen=True)
class ActionClass:
    cls: type[Action]
    source: str
    tree: ast.ClassDef


def action_classes(package: ModuleType = actions) -> Iterator[ActionClass]:
    for module in action_modules(package):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, Action):
                continue
            source = textwrap.dedent(inspect.getsource(cls))
            tree = ast.parse(source).body[0]
            assert isinstance(tree, ast.ClassDef)
            yield ActionClass(cls, source, tree)


def names_used(node: ast.AST) -> set[str]:
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    used |= {n.arg for n in ast.walk(node) if isinstance(n, ast.arg)}
    return used


def is_gateway(cls: type) -> bool:
    return any(qualname(base) in GATEWAYS for base in inspect.getmro(cls))


def test_the_allow_lists_name_real_classes() -> None:
    known = {qualname(a.cls) for a in action_classes()}
    stale = (set(GATEWAYS) | set(IDENTITY_ACTIONS)) - known
    assert not stale, f"allow-listed but gone (remove them): {sorted(stale)}"


def test_every_gateway_resolves_the_verified_customer_first() -> None:
    for action in action_classes():
        if qualname(action.cls) not in GATEWAYS:
            continue
        module_source = inspect.getsource(inspect.getmodule(action.cls))  # type: ignore[arg-type]
        assert "verified_customer(" in action.source or (
            # A gateway may resolve it in a helper of its module called with the session.
            "verified_customer(" in module_source and "session" in action.source
        ), f"{qualname(action.cls)} hands out data without verified_customer"


def data_without_gateway(package: ModuleType) -> list[str]:
    offenders = []
    for action in action_classes(package):
        name = qualname(action.cls)
        if is_gateway(action.cls) or name in IDENTITY_ACTIONS:
            continue
        touched = names_used(action.tree) & (set(MODELS) | DB_ACCESS | {"session", "Session"})
        if touched:
            offenders.append(f"{name} uses {sorted(touched)}")
    return offenders


def test_actions_touching_customer_data_go_through_a_gateway() -> None:
    offenders = data_without_gateway(actions)
    assert not offenders, (
        "these actions touch customer data without CustomerAction (or an allow-listed "
        f"gateway): {offenders}"
    )


def _enclosing_classes(tree: ast.Module) -> dict[ast.AST, str | None]:
    owner: dict[ast.AST, str | None] = {}

    def visit(node: ast.AST, current: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.ClassDef) else current
            owner[child] = inner
            visit(child, inner)

    visit(tree, None)
    return owner


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def sessions_outside_gateways(package: ModuleType) -> list[str]:
    offenders = []
    for module in action_modules(package):
        tree = ast.parse(inspect.getsource(module))
        owner = _enclosing_classes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _called_name(node) not in DB_ACCESS | {"Session"}:
                continue
            cls_name = owner.get(node)
            cls = getattr(module, cls_name, None) if cls_name else None
            allowed = cls is not None and (
                qualname(cls) in GATEWAYS or qualname(cls) in IDENTITY_ACTIONS
            )
            if not allowed:
                where = f"{module.__name__}.{cls_name or '<module function>'}"
                offenders.append(f"{where} line {node.lineno}: {_called_name(node)}()")
    return offenders


def test_only_gateways_open_sessions() -> None:
    offenders = sessions_outside_gateways(actions)
    assert not offenders, f"sessions opened outside the gateways: {offenders}"


def _statements(tree: ast.Module) -> Iterator[ast.stmt]:
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(
            node,
            ast.FunctionDef
            | ast.AsyncFunctionDef
            | ast.ClassDef
            | ast.If
            | ast.For
            | ast.While
            | ast.With
            | ast.Try,
        ):
            yield node


def unowned_reads(package: ModuleType) -> list[str]:
    offenders = []
    for module in action_modules(package):
        source = inspect.getsource(module)
        tree = ast.parse(source)
        for statement in _statements(tree):
            text = ast.get_source_segment(source, statement) or ""
            for call in (n for n in ast.walk(statement) if isinstance(n, ast.Call)):
                name = _called_name(call)
                first = call.args[0] if call.args else None
                model = first.id if isinstance(first, ast.Name) else None
                if model not in CUSTOMER_OWNED:
                    continue
                where = f"{module.__name__} line {call.lineno}"
                if name == "get" and isinstance(call.func, ast.Attribute):
                    offenders.append(f"{where}: session.get({model}, ...) instead of find_owned")
                elif name in QUERY_BUILDERS and not (
                    # By the customer, by this very conversation, or by a row found so.
                    "customer" in text
                    or ".sender_id ==" in text
                    or DERIVED_FROM_OWNED_ROW.search(text)
                ):
                    offenders.append(f"{where}: {name}({model}) not filtered by the customer")
    return offenders


def test_customer_rows_are_read_only_through_the_customer() -> None:
    offenders = unowned_reads(actions)
    assert not offenders, f"customer rows reached without an ownership check: {offenders}"


# The guard itself must catch what it is for: a few deliberately bad actions.
BAD_ACTIONS = {
    "session outside a gateway": """
from bot.db import session_scope
from bot.db.models import Order
from rasa_sdk import Action

class ActionLeak(Action):
    def name(self):
        return "action_leak"

    async def run(self, dispatcher, tracker, domain):
        with session_scope() as session:
            order = session.get(Order, int(tracker.get_slot("order_number")))
        dispatcher.utter_message(text=str(order.status))
        return []
""",
    "query by a typed number": """
from sqlalchemy import select
from actions.base import CustomerAction
from bot.db.models import Invoice

class ActionInvoiceLeak(CustomerAction):
    def name(self):
        return "action_invoice_leak"

    def answer(self, session, customer, dispatcher, tracker):
        number = tracker.get_slot("invoice_number")
        invoice = session.scalars(select(Invoice).where(Invoice.number == number)).first()
        dispatcher.utter_message(text=str(invoice.amount))
        return []
""",
}


@pytest.mark.parametrize(
    "why, check",
    [
        ("session outside a gateway", data_without_gateway),
        ("session outside a gateway", sessions_outside_gateways),
        ("session outside a gateway", unowned_reads),
        ("query by a typed number", unowned_reads),
    ],
)
def test_the_guard_catches_a_bad_action(
    why: str, check: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package_dir = tmp_path / "actions_probe"
    package_dir.mkdir()
    (package_dir / "__init__.py").write_text("")
    (package_dir / "leaky.py").write_text(BAD_ACTIONS[why])
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("actions_probe")
    try:
        assert check(probe), f"{check.__name__} missed: {why}"
    finally:
        for name in ("actions_probe.leaky", "actions_probe"):
            sys.modules.pop(name, None)
