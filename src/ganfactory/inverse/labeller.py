"""The generator's own labels for multi-view data: an interpreter on the generator's features.

Why this route: the multi-view images are the generator's, so their masks (and part maps) should come
from the generator too, as in DatasetGAN, not from a network run on images it never saw. GANverse3D
labels its samples with an instance segmenter; here the person of DatasetGAN is simulated by a
segmentation network trained on real renders (``ganfactory.annotate.synthetic.make_network_annotations``,
the cars benchmark's simulated annotator), which labels a few dozen generated images; the interpreter
learns from those and labels every sample from its features, with an ensemble uncertainty.

Stages (each resumable; a finished stage is reused)::

    OUT/segmenter/      downstream UNet on the real renders whose labels are trusted (part classes)
    OUT/annotations/    AnnotationSet of ``annotated`` generated seeds, labelled by the segmenter
    OUT/interpreter/    the interpreter (interpreter.json + weights.safetensors): use this one
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ganfactory.atomic import write_json
from ganfactory.errors import GanfactoryError

__all__ = ["LabellerSettings", "build_labeller"]


@dataclass(frozen=True)
class LabellerSettings:
    """How the labeller is made (stored in OUT/labeller.json)."""

    generator: str = "cars64"
    """Checkpoint path or built-in name."""
    real_data: str = ""
    """LabeledDataset of real renders with part labels (the cars splits; only samples whose labels are trusted
    are used, when the meta says so)."""
    classes: str | None = "cars-8"
    """Merge the real labels into this class set first (None: keep them)."""
    segmenter_iterations: int = 400
    segmenter_widths: tuple[int, ...] = (8, 16, 32, 64)
    """UNet widths: small, since it only has to label a few dozen images well enough for the interpreter."""
    segmenter_samples: int = 2000
    """At most this many trusted real samples train the segmenter."""
    annotated: int = 24
    """Generated images the segmenter labels for the interpreter."""
    first_seed: int = 50_000_000
    """Seeds of those images: ``first_seed ...``, far from the seeds multi-view data uses."""
    truncation_psi: float = 0.7
    interpreter_models: int = 3
    interpreter_epochs: int = 10
    interpreter_patience: int = 2
    pixels_per_image: int = 2048
    layers: tuple[str, ...] | None = ("b8.conv1", "b16.conv1", "b32.conv1", "b64.conv1")
    """Feature taps of the interpreter (None: every conv layer); the last conv of each block keeps it cheap
    on a shared CPU (448 features for cars64 instead of 1024)."""
    seed: int = 0

    def to_json(self) -> dict:
        return {**asdict(self), "layers": None if self.layers is None else list(self.layers),
                "segmenter_widths": list(self.segmenter_widths)}


def build_labeller(settings: LabellerSettings, out: str | Path, progress: bool = True) -> Path:
    """Make (or resume) the labeller at ``out``; returns the interpreter directory."""
    from ganfactory.annotate.store import AnnotationSet
    from ganfactory.annotate.synthetic import make_network_annotations
    from ganfactory.annotate.training import training_images
    from ganfactory.datasets.labeled import LabeledDataset
    from ganfactory.downstream import TrainConfig, load_data, load_segmenter, train_network
    from ganfactory.downstream.data import relabelled
    from ganfactory.gan import load_generator
    from ganfactory.label import FeatureTaps, InterpreterConfig, train_interpreter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = out / "labeller.json"
    if record.is_file() and json.loads(record.read_text())["settings"] != settings.to_json():
        raise GanfactoryError(f"{out} holds a labeller made with other settings; pass another --out")
    if not settings.real_data:
        raise GanfactoryError("the labeller needs real renders with part labels (--real DIR)")
    write_json(record, {"settings": settings.to_json(), "stages": ["segmenter", "annotations", "interpreter"]})
    interp_dir = out / "interpreter"
    if (interp_dir / "interpreter.json").is_file():
        return interp_dir

    real = LabeledDataset(settings.real_data)
    trusted = [i for i in range(len(real)) if real.meta(i).get("labels_trusted", True)][:settings.segmenter_samples]
    if not trusted:
        raise GanfactoryError(f"{settings.real_data}: no sample with trusted labels")
    schema, table = relabelled(real.schema, settings.classes)
    from ganfactory.schema import Schema

    schema = Schema(schema.classes)                         # masks and parts only: no keypoints
    data = load_data(real, None, trusted, table, schema, num_keypoints=0)
    config = TrainConfig(keypoints=False, iterations=settings.segmenter_iterations, seed=settings.seed,
                         widths=settings.segmenter_widths, checkpoint_every=100)
    train_network(data, out / "segmenter", config, provenance={"data": str(settings.real_data),
                                                                "samples": len(trusted)}, progress=progress)
    G = load_generator(settings.generator)
    seeds = list(range(settings.first_seed, settings.first_seed + settings.annotated))
    annotations = out / "annotations"
    if not (annotations / "done").is_file():              # one quick stage: redone whole when cut short
        shutil.rmtree(annotations, ignore_errors=True)
        make_network_annotations(G, annotations, seeds, load_segmenter(out / "segmenter"), settings.truncation_psi,
                                 settings.generator, meta={"annotator": "segmenter trained on real renders"})
        (annotations / "done").write_text("ok\n")
    store = AnnotationSet(annotations)
    icfg = InterpreterConfig(taps=FeatureTaps(settings.layers), num_models=settings.interpreter_models,
                             max_epochs=settings.interpreter_epochs, patience=settings.interpreter_patience,
                             pixels_per_image=settings.pixels_per_image, seed=settings.seed)
    interp, report = train_interpreter(G, training_images(store, G), store.schema, icfg, progress=progress)
    interp.save(interp_dir, provenance={"producer": "ganfactory multiview labeller", "generator": settings.generator,
                                        "annotations": str(annotations), "seeds": [seeds[0], seeds[-1] + 1],
                                        "report": {"holdout_accuracy": list(report.heldout_accuracy)}})
    return interp_dir
