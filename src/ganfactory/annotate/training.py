"""An AnnotationSet's annotated items as the style interpreter's training images.

Why in ``annotate``: the store builds on the interpreter's types (``annotate`` imports ``label``, never the
reverse), so the conversion from one to the other lives on this side.
"""

from __future__ import annotations

from ganfactory.annotate.store import AnnotationSet
from ganfactory.errors import GanfactoryError
from ganfactory.label.pixels import TrainingImage

__all__ = ["training_images"]


def training_images(store: AnnotationSet, G) -> list[TrainingImage]:
    """The annotated items of an AnnotationSet, in id order."""
    items = [store.item(i, G) for i in store.annotated_ids()]
    if not items:
        real = [i for i in store.annotated_ids(include_without_latent=True)]
        if real:
            raise GanfactoryError(f"{store.root}: its {len(real)} annotated items are real images without a latent "
                                  "(the generator has no features of them); invert them first with 'ganfactory "
                                  "annotate invert'")
        raise GanfactoryError(f"{store.root} has no item with status 'annotated'; annotate some first")
    return [TrainingImage(it.latent, it.label, it.keypoints, it.image, it.id) for it in items]
