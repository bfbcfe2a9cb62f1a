"""Annotations of generated images: the AnnotationSet store (browser annotator and importers build on it)."""

from ganfactory.annotate.store import (
    FORMAT,
    FORMAT_VERSION,
    STATUSES,
    AnnotationError,
    AnnotationItem,
    AnnotationSet,
    Latent,
    synthesize_latents,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "STATUSES", "AnnotationError", "AnnotationItem", "AnnotationSet", "Latent",
           "synthesize_latents"]
