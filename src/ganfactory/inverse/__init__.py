"""Inverse graphics (GANverse3D): multi-view data from a generator's view codes, the viewpoint regressor, and
the single-image inverse-graphics network trained through our DIB-R.

    net, _ = load_model("cars64-3d")
    prediction = net(images)            # mesh offsets, UV texture, camera (and light)
    mesh = net.mesh(prediction)
"""

from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.losses import LossWeights
from ganfactory.inverse.model import BUILTIN_MODELS, DEFAULT_MODEL, load_model, save_model
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig, Prediction
from ganfactory.inverse.viewpoint import (
    BUILTIN_REGRESSORS,
    ViewpointRegressor,
    load_viewpoint_regressor,
)

__all__ = [
    "BUILTIN_MODELS", "BUILTIN_REGRESSORS", "DEFAULT_MODEL", "InverseGraphicsNet", "LossWeights", "NetworkConfig",
    "OrbitCamera", "Prediction", "ViewpointRegressor", "load_model", "load_viewpoint_regressor", "save_model",
]
