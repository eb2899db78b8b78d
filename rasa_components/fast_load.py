"""Rasa's TED, DIET, logistic-regression and CRF components, loading in seconds.

Training and prediction are Rasa's own; only the way a trained model is loaded differs,
because loading is what a restarted or scaled-out Rasa waits for (on our 2-core machine,
CPU seconds):

- TED and DIET: Rasa's `RasaModel.load` creates the network's weights by fitting it on one
  example before restoring them from the checkpoint; tracing that training step costs ~24 s
  for TED and ~60 s for DIET, against ~5 s for everything else. One forward pass in eager
  mode creates every weight prediction uses just as well; the checkpoint then restores
  them, and only the prediction graph is traced, as Rasa does too. A weight the checkpoint
  does not cover means the model is not what we think: then it loads Rasa's way.
- LogisticRegressionClassifier: Rasa stores it with skops, whose import walks every
  scikit-learn estimator (~9 s). Its weights, intercepts and labels are stored as plain
  numpy arrays instead (no pickle).
- CRFEntityExtractor: Rasa retrains the CRF from its training set on every load (~5 s).
  crfsuite's own model file is stored as well and opened directly.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import rasa.shared.utils.io
import tensorflow as tf
from rasa.core.policies.ted_policy import TED, TEDPolicy
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor, CRFToken
from rasa.utils import train_utils
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

logger = logging.getLogger(__name__)


class ForwardPassLoading(RasaModel):
    """Builds the weights with a forward pass instead of a training step, then restores them."""

    @classmethod
    def load(
        cls,
        model_file_name: str,
        model_data_example: RasaModelData,
        predict_data_example: RasaModelData | None = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        if not finetune_mode and predict_data_example is not None:
            try:
                return cls._load_by_forward_pass(
                    model_file_name, predict_data_example, *args, **kwargs
                )
            except (AssertionError, ValueError, TypeError, tf.errors.OpError) as error:
                logger.warning(
                    "%s: loading by forward pass failed (%s); loading the way Rasa does.",
                    cls.__name__,
                    error,
                )
        # Fine-tuning needs the optimizer state the training step builds.
        return super().load(
            model_file_name,
            model_data_example,
            predict_data_example,
            finetune_mode,
            *args,
            **kwargs,
        )

    @classmethod
    def _load_by_forward_pass(
        cls, model_file_name: str, predict_data_example: RasaModelData, *args: Any, **kwargs: Any
    ) -> RasaModel:
        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(
            optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
            run_eagerly=config.get(RUN_EAGERLY),
        )
        batches, _ = train_utils.create_data_generators(
            model_data=predict_data_example, batch_sizes=1, epochs=1, shuffle=False
        )
        batch_in = next(iter(batches))[0]
        model._training = False
        # Eager calls create the weights of both sides: the labels' and the message's.
        model.prepare_for_predict()
        model.predict_step(batch_in)
        # Every weight that exists now must come from the checkpoint.
        model.load_weights(model_file_name).assert_existing_objects_matched()
        # Label embeddings were computed with the initial weights: compute them again.
        model.prepared_for_prediction = False
        # Trace the prediction graph now rather than on the first customer message.
        model.run_inference(predict_data_example)
        return model


class ForwardPassLoadingTED(ForwardPassLoading, TED):
    """TED's network, loaded by forward pass."""


class ForwardPassLoadingDIET(ForwardPassLoading, DIET):
    """DIET's network, loaded by forward pass."""


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True
)
class FastLoadTEDPolicy(TEDPolicy):
    """Rasa's TEDPolicy, trained and predicting as Rasa's does, loaded in seconds."""

    @staticmethod
    def model_class() -> type[TED]:
        return ForwardPassLoadingTED


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class FastLoadDIETClassifier(DIETClassifier):
    """Rasa's DIETClassifier, trained and predicting as Rasa's does, loaded in seconds."""

    @staticmethod
    def model_class() -> type[RasaModel]:
        return ForwardPassLoadingDIET


WEIGHTS_FILE = "weights.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FastLoadLogisticRegressionClassifier(LogisticRegressionClassifier):
    """Rasa's LogisticRegressionClassifier, its weights stored as numpy arrays."""

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as model_dir:
            np.savez(
                model_dir / WEIGHTS_FILE,
                classes=self.clf.classes_,
                coef=self.clf.coef_,
                intercept=self.clf.intercept_,
            )

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FastLoadLogisticRegressionClassifier:
        component = cls(config, execution_context.node_name, model_storage, resource)
        try:
            with (
                model_storage.read_from(resource) as model_dir,
                np.load(model_dir / WEIGHTS_FILE, allow_pickle=False) as weights,
            ):
                component.clf.classes_ = weights["classes"]
                # Stored column-major, so that scikit-learn's `X @ coef_.T` reads it in
                # place: row-major, scipy copies all of it (~10 MB) for every message.
                component.clf.coef_ = np.asfortranarray(weights["coef"])
                component.clf.intercept_ = weights["intercept"]
        except (ValueError, FileNotFoundError):
            # As Rasa's: no stored weights (no training data) means an untrained component.
            logger.warning("%s: no trained weights in the model.", cls.__name__)
            return component
        component.clf.n_features_in_ = component.clf.coef_.shape[1]
        return component


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class FastLoadCRFEntityExtractor(CRFEntityExtractor):
    """Rasa's CRFEntityExtractor that keeps crfsuite's model files instead of retraining."""

    def persist(self, dataset: list[list[CRFToken]]) -> None:
        # Rasa's files too: the training set lets an older loader retrain the taggers.
        super().persist(dataset)
        with self._model_storage.write_to(self._resource) as model_dir:
            for tag_name, tagger in (self.entity_taggers or {}).items():
                model_file = Path(tagger.modelfile.name)
                (model_dir / f"crf_{tag_name}.crfsuite").write_bytes(model_file.read_bytes())

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CRFEntityExtractor:
        import pycrfsuite
        import sklearn_crfsuite

        try:
            with model_storage.read_from(resource) as model_dir:
                crf_order = rasa.shared.utils.io.read_json_file(model_dir / "crf_order.json")
                models = {
                    tag_name: (model_dir / f"crf_{tag_name}.crfsuite").read_bytes()
                    for tag_name in crf_order
                }
        except (ValueError, FileNotFoundError):
            return super().load(config, model_storage, resource, execution_context, **kwargs)
        taggers = OrderedDict()
        for tag_name in crf_order:
            # The estimator as Rasa builds it, with crfsuite's trained tagger opened in it.
            crf = sklearn_crfsuite.CRF(
                algorithm="lbfgs",
                c1=config["L1_c"],
                c2=config["L2_c"],
                max_iterations=config["max_iterations"],
                all_possible_transitions=True,
            )
            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(models[tag_name])
            crf._tagger = tagger
            # crfsuite reads the model where it lies: its bytes must live as long as the tagger.
            crf.model_bytes = models[tag_name]
            taggers[tag_name] = crf
        extractor = cls(config, model_storage, resource, taggers)
        extractor.crf_order = crf_order
        return extractor
