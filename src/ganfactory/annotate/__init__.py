"""Annotations of generated and real images: the AnnotationSet store, and what builds on it (the browser annotator
in ``ganfactory.annotate.server``, importers in ``ganfactory.annotate.importers``)."""

from ganfactory.annotate.store import (
    FORMAT,
    FORMAT_VERSION,
    ORIGINS,
    STATUSES,
    AnnotationError,
    AnnotationItem,
    AnnotationSet,
    open_project,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "ORIGINS", "STATUSES", "AnnotationError", "AnnotationItem", "AnnotationSet",
           "open_project"]
