"""StyleGAN-R (GANverse3D's third step): a mapping network from (camera, shape, texture, background) back into the
generator's latents, so that the GAN becomes a controllable neural renderer (docs/neural).

    nr = load_neural_renderer("cars64")
    codes, images = nr.codes_from_seeds([7])
    turned = nr.render(codes.with_camera(azimuth_deg=120, elevation_deg=15))
"""

from ganfactory.neural.codes import PROPERTIES, PropertyCodes, extract_codes
from ganfactory.neural.mapping import MappingConfig, MappingOutput, NeuralMapping
from ganfactory.neural.model import BUILTIN_MAPPINGS, DEFAULT_MAPPING, load_mapping, save_mapping
from ganfactory.neural.renderer import NeuralRenderer, load_neural_renderer

__all__ = ["BUILTIN_MAPPINGS", "DEFAULT_MAPPING", "PROPERTIES", "MappingConfig", "MappingOutput", "NeuralMapping",
           "NeuralRenderer", "PropertyCodes", "extract_codes", "load_mapping", "load_neural_renderer",
           "save_mapping"]
