"""Single-image 3-D (GANverse3D's second step): an inverse-graphics network trained through our DIB-R.

    net, _ = load_model("cars64-3d")
    prediction = net(images)            # mesh offsets, UV texture, camera (and light)
    mesh = net.mesh(prediction)
"""

# inverse graphics network, training, reconstruction, 3-D scores (the "inverse" engineer's names)
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.losses import LossWeights
from ganfactory.inverse.model import BUILTIN_MODELS, DEFAULT_MODEL, load_model, save_model
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig, Prediction

__all__ = [
    "BUILTIN_MODELS", "DEFAULT_MODEL", "InverseGraphicsNet", "LossWeights", "NetworkConfig", "OrbitCamera",
    "Prediction", "load_model", "save_model",
]
