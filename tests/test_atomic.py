"""ganfactory.atomic: a write either lands whole under the final name or leaves the old file untouched."""

import json
import threading

import pytest

from ganfactory.atomic import atomic_path, write_atomic, write_json


def test_write_round_trips_and_leaves_no_temporary_files(tmp_path):
    write_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_atomic(tmp_path / "b.txt", "héllo")
    write_json(tmp_path / "c.json", {"x": [1, 2.5, None]})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2.5, None]}
    assert (tmp_path / "c.json").read_text().endswith("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_an_unserialisable_json_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_json(tmp_path / "x.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_concurrent_writers_of_one_file_never_tear_it(tmp_path):
    target = tmp_path / "shared.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]

    def writer(data):
        for _ in range(20):
            write_atomic(target, data)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    seen = set()
    while any(t.is_alive() for t in threads):
        if target.exists():
            seen.add(target.read_bytes())
    for t in threads:
        t.join()
    seen.add(target.read_bytes())
    assert seen <= set(payloads)
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]


def test_atomic_files_moves_a_file_with_its_companions_or_nothing(tmp_path):
    from ganfactory.atomic import atomic_files

    with atomic_files(tmp_path / "car.obj") as tmp:
        assert tmp.name == "car.obj" and tmp.parent != tmp_path
        tmp.write_text("mtllib car.mtl")
        tmp.with_suffix(".mtl").write_text("map_Kd car_tex0.png")
        tmp.with_name("car_tex0.png").write_bytes(b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["car.mtl", "car.obj", "car_tex0.png"]
    with pytest.raises(RuntimeError), atomic_files(tmp_path / "car.obj") as tmp:
        tmp.write_text("new")
        tmp.with_suffix(".mtl").write_text("new")
        raise RuntimeError("killed mid-write")
    assert (tmp_path / "car.obj").read_text() == "mtllib car.mtl"
    assert (tmp_path / "car.mtl").read_text() == "map_Kd car_tex0.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["car.mtl", "car.obj", "car_tex0.png"]
