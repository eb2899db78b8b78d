"""Six of Rasa 3.6's per-message hot paths, made cheap without changing what they return.

Profiling Herald embedded under load (py-spy, 10 customers at once) showed one Rasa process
pinned at 100% of a core, and almost half of that time in places that redo, on every
message, work whose answer never changes:

- RulePolicy parses every learned rule from its JSON key on every lookup. Rasa caches the
  parse, but with room for 1,000 rules; our model has more, and the lookup walks them in the
  same order each time, so a least-recently-used cache of that size misses on every rule.
  The cache here holds them all (one entry per rule of the trained model). Matching then
  tried every rule against the current turn, and walked the whole conversation back to its
  first turn; here rules are indexed by what their last turn asks for, and the walk stops
  where no rule reaches.
- After every custom action Rasa checks the action server's reply against a JSON schema
  with `jsonschema.validate`, which first validates the schema itself against the JSON
  Schema meta-schema. Here the schema is checked once; a reply that fails goes through
  Rasa's own check, so the error a bad reply raises is exactly Rasa's.
- Turning stored events back into objects looks up each event's class by walking every
  subclass of `Event` (with `inspect.isabstract` on each). Here the classes are indexed by
  type name once; a name not in the index is resolved Rasa's way.
- The SQL tracker store builds an ORM query to load a conversation's latest session and
  another to count it before saving, and an ORM object for every stored event only to read
  its JSON column. Building the queries costs more than running them; here they are the
  same SQL, written once.
- TED runs its network for every prediction, although what it predicts depends only on
  the last few dialogue states, and support conversations pass through the same states
  again and again. Here its predictions are remembered by those states (the most recent
  few thousand). A TED that reads the customer's words, not just the intent, is left alone.
- Every policy asks the conversation for its dialogue states, replaying all its events to
  get them: seven times per message, with only four different questions. Here the answer
  is remembered for as long as the conversation has not changed, and each asker gets its
  own copy (featurizers edit the states they are given).

`install()` is called by our Rasa launcher (rasa_components/launcher.py) before Rasa starts.
"""

from __future__ import annotations

import functools
import itertools
import json
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import sqlalchemy as sa
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET, USER
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ACTION_NAME, INTENT, TEXT
from rasa.shared.utils.common import all_subclasses

_rasa_validate_action_result = RemoteAction._validate_action_result
_rasa_resolve_by_type = Event.resolve_by_type
_rasa_ted_prediction = TEDPolicy.predict_action_probabilities
_rasa_past_states = DialogueStateTracker.past_states

# Dialogue states whose TED prediction is remembered, per policy; about 3 KB each.
TED_MEMORY_SIZE = 4096


@functools.cache
def rule_states(rule_key: str) -> Any:
    """A learned rule's states, parsed from its key once."""
    return json.loads(rule_key)


RuleIndex = dict[tuple[str | None, str | None], list[str]]


def _required(state: Any, sub_state: str, key: str) -> str | None:
    """The value a rule state demands for `key`, or None when any value will do."""
    value = state.get(sub_state, {}).get(key)
    return value if isinstance(value, str) and value and value != SHOULD_NOT_BE_SET else None


@functools.cache
def _index_rules(rule_keys: frozenset[str]) -> RuleIndex:
    """Rules by the previous action and intent their last state demands (None: any)."""
    index: RuleIndex = {}
    for key in rule_keys:
        last = rule_states(key)[-1] if rule_states(key) else {}
        demands = (_required(last, PREVIOUS_ACTION, ACTION_NAME), _required(last, USER, INTENT))
        index.setdefault(demands, []).append(key)
    return index


def possible_rule_keys(self: RulePolicy, lookup: dict[str, str], states: list[Any]) -> set[str]:
    """Rasa's `_get_possible_keys`, with two shortcuts that cannot change its answer.

    The current turn is checked only against rules whose last state asks for this turn's
    previous action and intent (or for none); the others fail it anyway. Earlier turns are
    checked until no remaining rule reaches further back.
    """
    possible_keys = set(lookup)
    for turn, state in enumerate(reversed(states)):
        if turn == 0:
            index = _index_rules(frozenset(lookup))
            action = _required(state, PREVIOUS_ACTION, ACTION_NAME)
            intent = _required(state, USER, INTENT)
            possible_keys = {
                key
                for demands in {(action, intent), (action, None), (None, intent), (None, None)}
                for key in index.get(demands, ())
            }
        elif all(turn >= len(rule_states(key)) for key in possible_keys):
            break
        possible_keys = {key for key in possible_keys if self._is_rule_applicable(key, turn, state)}
    return possible_keys


@functools.cache
def _action_result_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    if _action_result_validator().is_valid(result):
        return True
    return bool(_rasa_validate_action_result(self, result))


@functools.cache
def _event_classes_by_type() -> dict[str, type[Event]]:
    index: dict[str, type[Event]] = {}
    # The first subclass with a name wins, as in Rasa's own walk.
    for cls in all_subclasses(Event):
        index.setdefault(cls.type_name, cls)
    return index


def resolve_event_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    cls = _event_classes_by_type().get(type_name)
    return cls if cls is not None else _rasa_resolve_by_type(type_name, default)


# The events of a conversation's latest session, selected as Rasa's `_event_query` does.
_LATEST_SESSION = """
FROM {events} AS e,
     (SELECT max(timestamp) AS session_start FROM {events}
      WHERE sender_id = :sender_id AND type_name = :session_started) AS s
WHERE e.sender_id = :sender_id
  AND (e.timestamp >= s.session_start OR s.session_start IS NULL)
"""


@functools.cache
def _latest_session_sql(store: SQLTrackerStore) -> tuple[Any, Any]:
    """(its events' JSON in order, how many there are) for one tracker store's table."""
    table = store.engine.dialect.identifier_preparer.format_table(store.SQLEvent.__table__)
    latest_session = _LATEST_SESSION.format(events=table)
    return (
        sa.text(f"SELECT e.data {latest_session} ORDER BY e.id"),
        sa.text(f"SELECT count(*) {latest_session}"),
    )


def _latest_session_parameters(sender_id: str) -> dict[str, str]:
    return {"sender_id": sender_id, "session_started": SessionStarted.type_name}


async def retrieve_events_as_rows(
    self: SQLTrackerStore, sender_id: str, fetch_events_from_all_sessions: bool
) -> DialogueStateTracker | None:
    with self.session_scope() as session:
        if fetch_events_from_all_sessions:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=True)
            rows = query.with_entities(self.SQLEvent.data).all()
        else:
            events_sql, _ = _latest_session_sql(self)
            rows = session.execute(events_sql, _latest_session_parameters(sender_id)).all()
        events = [json.loads(data) for (data,) in rows]
    if self.domain and events:
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
    return None


def events_not_yet_stored(
    self: SQLTrackerStore, session: Any, tracker: DialogueStateTracker
) -> Any:
    _, count_sql = _latest_session_sql(self)
    stored = session.execute(count_sql, _latest_session_parameters(tracker.sender_id)).scalar()
    return itertools.islice(tracker.events, stored, len(tracker.events))


def remembered_ted_prediction(
    self: TEDPolicy,
    tracker: DialogueStateTracker,
    domain: Any,
    rule_only_data: dict[str, Any] | None = None,
    precomputations: Any = None,
    **kwargs: Any,
) -> PolicyPrediction:
    if self.model is None or TEXT in self.fake_features:
        return _rasa_ted_prediction(
            self, tracker, domain, rule_only_data, precomputations, **kwargs
        )
    states = self._prediction_states(tracker, domain, rule_only_data=rule_only_data)
    key = json.dumps(states, sort_keys=True, default=repr)
    memory: OrderedDict[str, PolicyPrediction] = self.__dict__.setdefault(
        "_remembered_predictions", OrderedDict()
    )
    known = memory.get(key)
    if known is None:
        known = _rasa_ted_prediction(
            self, tracker, domain, rule_only_data, precomputations, **kwargs
        )
        memory[key] = known
        if len(memory) > TED_MEMORY_SIZE:
            memory.popitem(last=False)
    else:
        memory.move_to_end(key)
    return self._prediction(
        list(known.probabilities),
        is_end_to_end_prediction=known.is_end_to_end_prediction,
        optional_events=known.optional_events,
        diagnostic_data=known.diagnostic_data,
    )


@dataclass
class _RememberedStates:
    """A conversation's states, valid while its events and the domain are the ones seen."""

    tracker: weakref.ref[DialogueStateTracker]
    domain: Any = None
    events: tuple[int, Any, Any] = (0, None, None)
    states: dict[tuple[bool, bool, str], list[Any]] = field(default_factory=dict)


# Keyed by id(): trackers compare by value and cannot be hashed. The weak reference tells a
# tracker from a later one that got the same id.
_remembered_states: dict[int, _RememberedStates] = {}


def _states_of(tracker: DialogueStateTracker, domain: Any) -> _RememberedStates:
    memory = _remembered_states.get(id(tracker))
    if memory is None or memory.tracker() is not tracker:
        key = id(tracker)
        memory = _RememberedStates(
            weakref.ref(tracker, lambda _: _remembered_states.pop(key, None))
        )
        _remembered_states[key] = memory
    events = tracker.events
    # Events are only ever appended; with a bounded history the oldest one changes as well.
    seen = (len(events), events[0] if events else None, events[-1] if events else None)
    if (
        memory.domain is not domain
        or memory.events[0] != seen[0]
        or memory.events[1] is not seen[1]
        or memory.events[2] is not seen[2]
    ):
        memory.domain, memory.events, memory.states = domain, seen, {}
    return memory


def remembered_past_states(
    self: DialogueStateTracker,
    domain: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[Any]:
    memory = _states_of(self, domain)
    question = (
        omit_unset_slots,
        ignore_rule_only_turns,
        json.dumps(rule_only_data, sort_keys=True, default=repr),
    )
    states = memory.states.get(question)
    if states is None:
        states = _rasa_past_states(
            self,
            domain,
            omit_unset_slots=omit_unset_slots,
            ignore_rule_only_turns=ignore_rule_only_turns,
            rule_only_data=rule_only_data,
        )
        memory.states[question] = states
    # A state is a dict of sub-state dicts whose values are strings, numbers and tuples.
    return [{name: dict(sub_state) for name, sub_state in state.items()} for state in states]


def install() -> None:
    """Swap the hot paths in; idempotent."""
    RulePolicy._rule_key_to_state = staticmethod(rule_states)  # type: ignore[method-assign]
    RulePolicy._get_possible_keys = possible_rule_keys  # type: ignore[method-assign]
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    Event.resolve_by_type = staticmethod(resolve_event_type)  # type: ignore[method-assign]
    SQLTrackerStore._retrieve = retrieve_events_as_rows  # type: ignore[method-assign]
    SQLTrackerStore._additional_events = events_not_yet_stored  # type: ignore[method-assign]
    TEDPolicy.predict_action_probabilities = remembered_ted_prediction  # type: ignore[method-assign]
    DialogueStateTracker.past_states = remembered_past_states  # type: ignore[method-assign]
