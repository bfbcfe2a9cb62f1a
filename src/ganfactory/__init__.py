"""ganfactory: a StyleGAN as a labeled-data factory and a 3D reconstructor."""

__version__ = "0.1.0"
