"""The style interpreter: feature taps, the factorised first layer, the pixel ensemble, uncertainty."""

from ganfactory.label.config import InterpreterConfig
from ganfactory.label.features import (
    FeatureTaps,
    ResolvedTaps,
    concat_resized,
    conv_layers,
    factorised_first_layer,
    gather_pixels,
    naive_first_layer,
)
from ganfactory.label.interpreter import Interpreter, Prediction, load_interpreter
from ganfactory.label.pixel_mlp import PixelMLP
from ganfactory.label.pixels import PixelSet, TrainingImage, collect_pixels
from ganfactory.label.training import TrainReport, train_interpreter
from ganfactory.label.uncertainty import filter_most_uncertain, image_score, js_divergence

__all__ = ["FeatureTaps", "Interpreter", "InterpreterConfig", "PixelMLP", "PixelSet", "Prediction", "ResolvedTaps",
           "TrainReport", "TrainingImage", "collect_pixels", "concat_resized", "conv_layers", "factorised_first_layer",
           "filter_most_uncertain", "gather_pixels", "image_score", "js_divergence", "load_interpreter",
           "naive_first_layer", "train_interpreter"]
