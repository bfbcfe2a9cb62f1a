"""Reading and writing generator checkpoints: our own format, NVlabs pickles, rosinality files."""

from ganfactory.gan.io.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ganfactory.gan.io.load import BUILTIN_GENERATORS, load_generator, read_any

__all__ = ["BUILTIN_GENERATORS", "Checkpoint", "load_checkpoint", "load_generator", "read_any", "save_checkpoint"]
