"""One contract, every on-disk format: a checkpoint, an AnnotationSet, a LabeledDataset, an interpreter and a
downstream network each read back what was written, and each refuses a broken header (missing, cut short, not an
object, another format, a newer version) with a one-line GanfactoryError, without changing a byte on disk."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfactory.errors import GanfactoryError


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class FormatContract:
    """Subclasses give ``name``, ``header`` (the JSON file naming the format), ``write(root) -> path`` and
    ``read(path)``, and ``check(read_back)`` for the round trip."""

    name = ""
    header = ""

    def write(self, root: Path) -> Path:
        raise NotImplementedError

    def read(self, path: Path):
        raise NotImplementedError

    def check(self, obj) -> None:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def written(self, tmp_path_factory):
        torch.set_num_threads(1)
        return self.write(tmp_path_factory.mktemp(self.name))

    def test_round_trip(self, written):
        self.check(self.read(written))

    def _refused(self, path: Path, match: str | None = None) -> None:
        before = _digest(path)
        with pytest.raises(GanfactoryError, match=match) as err:
            self.read(path)
        assert len(str(err.value).splitlines()) == 1
        assert _digest(path) == before

    def _copy(self, written: Path, tmp_path: Path) -> Path:
        import shutil

        out = tmp_path / written.name
        shutil.copytree(written, out)
        return out

    def test_missing_header(self, written, tmp_path):
        path = self._copy(written, tmp_path)
        (path / self.header).unlink()
        self._refused(path, self.header)

    def test_header_cut_short(self, written, tmp_path):
        path = self._copy(written, tmp_path)
        data = (path / self.header).read_bytes()
        (path / self.header).write_bytes(data[:len(data) // 2])
        self._refused(path)

    def test_header_not_an_object(self, written, tmp_path):
        path = self._copy(written, tmp_path)
        (path / self.header).write_text("[1, 2]")
        self._refused(path)

    @pytest.mark.parametrize("change", [{"format": "something.else"}, {"format_version": 999}])
    def test_other_format_or_newer_version(self, written, tmp_path, change):
        path = self._copy(written, tmp_path)
        header = json.loads((path / self.header).read_text())
        header.update(change)
        (path / self.header).write_text(json.dumps(header))
        self._refused(path, "format")


class TestCheckpoint(FormatContract):
    name, header = "checkpoint", "config.json"

    def write(self, root):
        from ganfactory.gan import read_any, save_checkpoint

        return save_checkpoint(read_any("tiny32"), root / "ckpt")

    def read(self, path):
        from ganfactory.gan import load_checkpoint

        return load_checkpoint(path)

    def check(self, ckpt):
        from ganfactory.gan import load_generator

        reference = load_generator("tiny32")
        for k, v in reference.state_dict().items():
            assert torch.equal(ckpt.generator.state_dict()[k], v), k


class TestAnnotationSet(FormatContract):
    name, header = "annotations", "schema.json"

    def write(self, root):
        from ganfactory.annotate.synthetic import make_cluster_annotations
        from ganfactory.gan import load_generator

        return make_cluster_annotations(load_generator("tiny32"), root / "ann", range(3), 2, keypoints=True).root

    def read(self, path):
        from ganfactory.annotate import AnnotationSet
        from ganfactory.gan import load_generator

        store = AnnotationSet(path)
        return store, [store.item(i, load_generator("tiny32")) for i in store.ids]

    def check(self, got):
        store, items = got
        assert store.ids == ["seed000000", "seed000001", "seed000002"]
        assert [c.name for c in store.schema.classes] == ["background", "c1", "c2"]
        assert all(it.label.shape == (32, 32) and len(it.keypoints) == 2 for it in items)


class TestLabeledDataset(FormatContract):
    name, header = "labeled", "dataset.json"

    def write(self, root):
        from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
        from ganfactory.schema import Schema

        schema = Schema.from_names(["background", "thing"], keypoints=["tip"])
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
        labels = (rng.random((5, 8, 8)) > 0.5).astype(np.uint8)
        return write_labeled_dataset(root / "ds", schema, 5, lambda i: LabeledSample(
            f"s{i}", images[i], labels[i], [[1.0 * i, 2.0, 1]]), shard_size=2, coco_object=None).parent

    def read(self, path):
        from ganfactory.datasets.labeled import LabeledDataset

        ds = LabeledDataset(path)
        return [ds[i] for i in range(len(ds))]

    def check(self, samples):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
        labels = (rng.random((5, 8, 8)) > 0.5).astype(np.uint8)
        assert len(samples) == 5
        for i, (image, label, meta) in enumerate(samples):
            assert np.array_equal(image, images[i]) and np.array_equal(label, labels[i])
            assert meta["id"] == f"s{i}" and meta["keypoints"] == [[1.0 * i, 2.0, 1]]


class TestInterpreter(FormatContract):
    name, header = "interpreter", "interpreter.json"

    def write(self, root):
        from ganfactory.annotate.synthetic import make_cluster_annotations
        from ganfactory.annotate.training import training_images
        from ganfactory.gan import load_generator
        from ganfactory.label import InterpreterConfig, train_interpreter

        G = load_generator("tiny32")
        store = make_cluster_annotations(G, root / "ann", range(2), 2)
        config = InterpreterConfig(num_models=2, pixels_per_image=64, holdout_pixels_per_image=16, max_epochs=1)
        interp, _ = train_interpreter(G, training_images(store, G), store.schema, config, progress=False)
        type(self).weights = {k: v.clone() for k, v in interp.classifiers[1].state_dict().items()}
        return interp.save(root / "interp")

    def read(self, path):
        from ganfactory.label import load_interpreter

        return load_interpreter(path)

    def check(self, interp):
        assert len(interp.classifiers) == 2
        for k, v in self.weights.items():
            assert torch.equal(interp.classifiers[1].state_dict()[k], v), k


class TestDownstreamNetwork(FormatContract):
    name, header = "downstream", "model.json"

    def write(self, root):
        from ganfactory.downstream import TrainConfig, train_network
        from ganfactory.downstream.data import SegmentationData
        from ganfactory.schema import Schema

        g = torch.Generator().manual_seed(0)
        data = SegmentationData(torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8, generator=g),
                                torch.randint(0, 2, (4, 16, 16), dtype=torch.uint8, generator=g),
                                torch.zeros(4, 0, 3), Schema.from_names(["background", "thing"]),
                                tuple(f"s{i}" for i in range(4)))
        type(self).data = data
        return train_network(data, root / "net", TrainConfig(widths=(4, 8), iterations=2, batch_size=2,
                                                             log_every=1), progress=False).out

    def read(self, path):
        from ganfactory.downstream import load_segmenter

        return load_segmenter(path)

    def check(self, segmenter):
        labels, keypoints = segmenter.predict(self.data.images.numpy())
        assert labels.shape == (4, 16, 16) and keypoints is None
        assert segmenter.class_names == ["background", "thing"]
