"""Corrects one-letter typos in a message's words to words of the training data.

Customers type "cancle my ordr" and "where is my refnud". Character n-grams soften such
typos for the classifiers, but a misspelt key word still often flips the intent. This
component learns the vocabulary of the training examples; at prediction time a word of at
least `min_length` letters that is not in it, and is one edit (a letter dropped, added,
replaced or two neighbours swapped) away from words that are, is read as the most frequent
of those. It changes only the tokens the featurizers and entity extractors look at: the
message text, and so every entity value, stays exactly as the customer typed it.
"""

from __future__ import annotations

import json
import logging
import string
from collections import Counter
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabulary.json"
# Set on a message whose words are all unknown, even after correction (see UnknownWordsGuard).
NO_KNOWN_WORDS = "herald_no_known_words"
LETTERS = string.ascii_lowercase


def one_edit_away(word: str) -> set[str]:
    """Every string one deletion, transposition, replacement or insertion away from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [left + right[1:] for left, right in splits if right]
    swaps = [left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1]
    replaces = [left + c + right[1:] for left, right in splits if right for c in LETTERS]
    inserts = [left + c + right for left, right in splits for c in LETTERS]
    return set(deletes + swaps + replaces + inserts)


def _same_case(correction: str, original: str) -> str:
    if original.isupper():
        return correction.upper()
    if original[:1].isupper():
        return correction.capitalize()
    return correction


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class VocabularySpellingCorrector(GraphComponent):
    """Reads a misspelt word as the training-data word one edit away (see module docstring)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Shorter words have too many one-edit neighbours to guess from.
        return {"min_length": 4}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: dict[str, int] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary: dict[str, int] = vocabulary or {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> VocabularySpellingCorrector:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> VocabularySpellingCorrector:
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = json.loads((directory / VOCABULARY_FILE).read_text())
        except (ValueError, FileNotFoundError):
            logger.warning("No vocabulary in the model: words are not spell-corrected.")
            vocabulary = {}
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        counts: Counter[str] = Counter()
        for example in training_data.training_examples:
            for token in example.get(TOKENS_NAMES[TEXT]) or []:
                word = token.text.lower()
                if word.isalpha():
                    counts[word] += 1
        self.vocabulary = dict(counts)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(self.vocabulary, sort_keys=True))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        # The training words are the vocabulary: there is nothing to correct.
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            words = [t for t in message.get(TOKENS_NAMES[TEXT]) or [] if t.text.isalpha()]
            for token in words:
                self._correct(token)
            known = [t for t in words if t.text.lower() in self.vocabulary]
            message.set(NO_KNOWN_WORDS, bool(words) and not known)
        return messages

    def correction(self, word: str) -> str | None:
        """The vocabulary word `word` is a typo of, or None if it is a word or no guess."""
        lower = word.lower()
        if len(lower) < self._config["min_length"] or not lower.isalpha():
            return None
        if lower in self.vocabulary:
            return None
        candidates = [c for c in one_edit_away(lower) if c in self.vocabulary]
        if not candidates:
            return None
        return max(candidates, key=lambda c: (self.vocabulary[c], c))

    def _correct(self, token: Token) -> None:
        correction = self.correction(token.text)
        if correction is not None:
            token.text = _same_case(correction, token.text)
            token.lemma = correction


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class UnknownWordsGuard(GraphComponent):
    """Takes the confidence away from an intent guessed from no word the model knows.

    A classifier always names some intent: "zzkt plorb yeeble frunk" reads as `affirm`
    (its letters look like "yes") with confidence enough to cancel an order on. When not
    one word of a message is in the training vocabulary, even one typo away, the guess
    comes from letter shapes alone, so its confidence is set to zero and the
    FallbackClassifier after this component asks the customer to say it another way.
    Messages without words (an order number, an email, an emoji) are left alone.
    """

    @classmethod
    def required_components(cls) -> list[type]:
        return [VocabularySpellingCorrector, IntentClassifier]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsGuard:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.get(INTENT)
            if message.get(NO_KNOWN_WORDS) and intent:
                intent[PREDICTED_CONFIDENCE_KEY] = 0.0
                for ranked in message.get(INTENT_RANKING_KEY) or []:
                    ranked[PREDICTED_CONFIDENCE_KEY] = 0.0
        return messages
