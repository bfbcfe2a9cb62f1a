"""StyleGAN2: networks, checkpoints, sampling."""

from ganfactory.gan.io import (
    BUILTIN_GENERATORS,
    Checkpoint,
    load_checkpoint,
    load_generator,
    read_any,
    save_checkpoint,
)
from ganfactory.gan.latent import Latent, LatentError, seed_noise, seeds_to_z, synthesize_latents
from ganfactory.gan.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    mix_styles,
)

__all__ = [
    "BUILTIN_GENERATORS",
    "Checkpoint",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "Latent",
    "LatentError",
    "load_checkpoint",
    "load_generator",
    "mix_styles",
    "read_any",
    "save_checkpoint",
    "seed_noise",
    "seeds_to_z",
    "synthesize_latents",
]
