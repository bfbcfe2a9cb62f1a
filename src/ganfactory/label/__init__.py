"""The style interpreter: feature taps, the factorised first layer, the pixel ensemble, uncertainty."""

from ganfactory.label.features import (
    FeatureTaps,
    ResolvedTaps,
    concat_resized,
    conv_layers,
    factorised_first_layer,
    gather_pixels,
    naive_first_layer,
)
from ganfactory.label.interpreter import (
    Interpreter,
    InterpreterConfig,
    PixelMLP,
    PixelSet,
    Prediction,
    TrainingImage,
    TrainReport,
    collect_pixels,
    load_interpreter,
    train_interpreter,
    training_images,
)
from ganfactory.label.uncertainty import filter_most_uncertain, image_score, js_divergence

__all__ = ["FeatureTaps", "Interpreter", "InterpreterConfig", "PixelMLP", "PixelSet", "Prediction", "ResolvedTaps",
           "TrainReport", "TrainingImage", "collect_pixels", "concat_resized", "conv_layers", "factorised_first_layer",
           "filter_most_uncertain", "gather_pixels", "image_score", "js_divergence", "load_interpreter",
           "naive_first_layer", "train_interpreter", "training_images"]
