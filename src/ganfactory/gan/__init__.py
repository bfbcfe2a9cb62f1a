"""StyleGAN2: networks, checkpoints, sampling."""

from ganfactory.gan.io import (
    BUILTIN_GENERATORS,
    Checkpoint,
    load_checkpoint,
    load_generator,
    read_any,
    save_checkpoint,
)
from ganfactory.gan.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    mix_styles,
)
from ganfactory.gan.sampling import seeds_to_z

__all__ = [
    "BUILTIN_GENERATORS",
    "Checkpoint",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "load_checkpoint",
    "load_generator",
    "mix_styles",
    "read_any",
    "save_checkpoint",
    "seeds_to_z",
]
