"""No pickle from outside is ever executed: anything beyond tensors, containers and NVlabs' network
record is refused before it can run."""

import contextlib
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


# The allow-list entries that protocols 2-3 and numpy arrays need. Each must hand a pickle plain data
# only: no class it could instantiate, no function it could call with its own arguments, nothing
# callable in what it returns.
PLAIN_DATA_ENTRIES = [("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                      ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
                      ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
                      ("numpy._core.numeric", "_frombuffer"), ("builtins", "set"), ("__builtin__", "set"),
                      ("_codecs", "encode"), ("codecs", "encode")]


def _hostile_values():
    import numpy as np

    from ganfactory.gan.io.nvlabs import _ALLOWED

    return [os_system := __import__("os").system, eval, type, object, np.ndarray, np.dtype, np.frombuffer,
            lambda: None, _ALLOWED[("numpy", "ndarray")], "O", "V8", "object", "rot13", "zlib", "utf-8",
            "latin1", b"b", b"\x00" * 8, "f4", (0,), (2,), [os_system], (os_system,), {"a": os_system}, None, 0,
            -1, True, np.dtype("f4"), np.dtype("O"), bytearray(8), "C"]


def _reachable(obj, seen=None):
    """Every object inside ``obj`` (containers, arrays of objects) including itself."""
    import numpy as np

    seen = [] if seen is None else seen
    if any(o is obj for o in seen):
        return seen
    seen.append(obj)
    items = (list(obj) if isinstance(obj, set | frozenset | list | tuple) else
             list(obj.values()) + list(obj) if isinstance(obj, dict) else
             list(obj.ravel()) if isinstance(obj, np.ndarray) and obj.dtype == object else [])
    for item in items:
        _reachable(item, seen)
    return seen


def test_new_allow_list_entries_reach_no_callable():
    import itertools

    import numpy as np

    from ganfactory.gan.io.nvlabs import _ALLOWED

    hostile = _hostile_values()
    calls = 0
    for key in PLAIN_DATA_ENTRIES:
        entry = _ALLOWED[key]
        if key == ("numpy", "ndarray"):  # a marker, neither a class nor callable
            assert not callable(entry) and not isinstance(entry, type)
            continue
        assert type(entry).__name__ == "function" and not isinstance(entry, type), key  # NEWOBJ needs a class
        for n in range(5):
            step = {3: 7, 4: 401}.get(n, 1)  # every pair; a regular sample of triples and quadruples
            for args in itertools.islice(itertools.product(hostile, repeat=n), 0, None, step):
                calls += 1
                try:
                    out = entry(*args)
                except CheckpointError:
                    continue
                except (TypeError, ValueError, OverflowError):  # wrong arity or numpy refusing the bytes
                    continue
                assert isinstance(out, set | bytes | np.ndarray | np.dtype | np.generic), (key, args, out)
                inputs = [o for a in args for o in _reachable(a)]
                for o in _reachable(out)[1:] if isinstance(out, set) else [out]:
                    assert not isinstance(o, type), (key, args)
                    assert not callable(o) or any(o is i for i in inputs), (key, args, o)
    assert calls > 10_000


class _Reduce:
    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


@contextlib.contextmanager
def _context(what: str):
    """Name the hostile case in a failure."""
    try:
        yield
    except BaseException as e:
        e.add_note(f"case: {what}")
        raise


def test_numpy_data_cannot_be_turned_into_objects(tmp_path):
    """Object and record dtypes, object arrays and other subtypes are refused inside a pickle."""
    import numpy as np

    rec = np._core.multiarray._reconstruct
    hostile = {
        "object dtype": np.array([None, 1], dtype=object),
        "record dtype": np.zeros(2, dtype=[("a", "f4"), ("b", "O")]),
        "_reconstruct of a subclass": _Reduce(rec, (np.matrix, (0,), b"b")),
        "_reconstruct of a function": _Reduce(rec, (eval, (0,), b"b")),
        "array state with a record dtype": _Reduce(rec, (np.ndarray, (0,), b"b"),
                                                   (1, (1,), np.dtype([("a", "f4")]), False, b"\0" * 4)),
        "set of nothing plain": _Reduce(set, ("abc",)),
    }
    for what, obj in hostile.items():
        path = tmp_path / "h.pkl"
        path.write_bytes(pickle.dumps({"G_ema": obj}, protocol=2))
        with pytest.raises(CheckpointError, match="refusing to load"), _context(what):
            read_nvlabs_pickle(path)
    # ...while plain numeric arrays come through at every protocol.
    for protocol in (2, 3, 4, 5):
        path = tmp_path / f"ok{protocol}.pkl"
        arr = np.arange(6, dtype=np.float32).reshape(2, 3)
        path.write_bytes(pickle.dumps({"G_ema": [arr, {1, 2}, b"\xff\x00", np.int64(7)], "training_set_kwargs": {}},
                                      protocol=protocol))
        with pytest.raises(CheckpointError, match="not an NVlabs snapshot"):  # parsed to the end, then refused
            read_nvlabs_pickle(path)


def test_protocol_2_bytes_only_through_latin1(tmp_path):
    import codecs

    path = tmp_path / "rot13.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Reduce(codecs.encode, ("print", "rot13"))}, protocol=2))
    with pytest.raises(CheckpointError, match="codecs.encode with 'rot13'"):
        read_nvlabs_pickle(path)
