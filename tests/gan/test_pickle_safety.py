"""No pickle from outside is ever executed: anything beyond tensors, containers and NVlabs' network
record is refused before it can run."""

import pickle
import sys
import types

import pytest

from ganfactory.errors import CheckpointError
from ganfactory.gan import load_generator, read_any
from ganfactory.gan.io.nvlabs import read_nvlabs_pickle


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_shell_command_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(marker)}))
    with pytest.raises(CheckpointError, match=r"refusing to load.*(posix|os)\.system"):
        load_generator(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the control: plain pickle does run it
    assert marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    class Eval:
        def __reduce__(self):
            return (eval, ("1+1",))

    path = tmp_path / "eval.pkl"
    path.write_bytes(pickle.dumps(Eval()))
    with pytest.raises(CheckpointError, match="builtins.eval"):
        read_nvlabs_pickle(path)


def _fake_persistence(monkeypatch):
    """A stand-in for NVlabs' torch_utils.persistence so that test pickles reference the same global."""
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("never called while pickling")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)
    return _reconstruct_persistent_obj


class _Record:
    def __init__(self, fn, class_name, state):
        self.fn, self.meta = fn, dict(type="class", version=6, module_src="import os; os.system('x')",
                                      class_name=class_name, state=state)

    def __reduce__(self):
        return (self.fn, (self.meta,))


def test_stylegan3_generator_is_refused_clearly(tmp_path, monkeypatch):
    fn = _fake_persistence(monkeypatch)
    synthesis = _Record(fn, "SynthesisNetwork", {"_modules": {"input": _Record(fn, "SynthesisInput", {})}})
    mapping = _Record(fn, "MappingNetwork", {"_modules": {}})
    G = _Record(fn, "Generator", {"_modules": {"synthesis": synthesis, "mapping": mapping},
                                  "img_resolution": 256, "z_dim": 512, "w_dim": 512, "c_dim": 0})
    path = tmp_path / "sg3.pkl"
    path.write_bytes(pickle.dumps({"G_ema": G, "training_set_kwargs": {}}))
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        load_generator(path)


def test_garbage_and_truncated_files(tmp_path, nvlabs_pickle):
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(nvlabs_pickle.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="not a readable NVlabs network pickle"):
        read_any(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a ganfactory checkpoint, NVlabs pickle or rosinality"):
        read_any(text)
    not_snapshot = tmp_path / "list.pkl"
    not_snapshot.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="not an NVlabs snapshot"):
        read_any(not_snapshot)
