"""``ganfactory bench cars --quick`` end to end: real splits rendered by the cars builder, the built-in generator,
every stage of every available arm in both protocols (seen and unseen cars), the generator sweep (cars64 and
tiny32, with their KID), results.json and the report; then a rerun that resumes (skips everything)."""

import json
import shutil
import time

import pytest

from ganfactory.cli import main


@pytest.mark.slow
def test_bench_cars_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench"
    t0 = time.perf_counter()
    args = ["bench", "cars", "--quick", "--out", str(out), "--quiet", "--sweep-generators", "cars64,tiny32"]
    assert main(args) == 0
    first = time.perf_counter() - t0
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True and results["classes"][0] == "background" and len(results["classes"]) == 8
    assert set(results["arms"]) == {"few", "inversion", "annotator", "mixed", "full"}
    assert set(results["protocols"]) == {"seen", "unseen"} and results["headline"] == "unseen"
    assert results["protocols"]["seen"]["arms"] == results["arms"]
    for protocol in results["protocols"].values():
        for arm, scores in protocol["arms"].items():
            assert 0 <= scores["miou"] <= 1 and 0 <= scores["pck"]["pck"] <= 1, arm
            cm = scores["confusion"]
            assert sum(map(sum, cm)) == protocol["test_images"] * 64 * 64
            assert scores["train_samples"] > 0
    unseen = results["protocols"]["unseen"]
    assert len(unseen["held_out_car_ids"]) == 3 and unseen["data"]["test"].endswith("test-u")
    assert (out / "unseen" / "arms" / "mixed" / "scores.json").is_file()
    # arm 4: the inversion route's filtered set and the 16 real images, repeated to half of every batch
    assert results["arms"]["mixed"]["train_samples"] == 22 + 16 * round(22 / 16)
    sweep = results["generator_sweep"]
    assert [r["generator"] for r in sweep] == ["cars64", "tiny32"]
    assert sweep[0]["miou"] == unseen["arms"]["annotator"]["miou"]        # the main arm, not run again
    assert all(isinstance(r["kid"], float) for r in sweep) and (out / "kid" / "1.json").is_file()
    assert (out / "unseen" / "gens" / "1" / "scores.json").is_file()
    config = results["config"]
    # the sweep: every size, with and without filtering, per DatasetGAN route that ran
    routes = {r["route"] for r in results["sweep"]}
    assert {(r["candidates"], r["filtered"]) for r in results["sweep"] if r["route"] == "annotator"} == {
        (n, f) for n in config["sweep_sizes"] for f in (True, False)}
    for r in results["sweep"]:
        dropped = int(r["candidates"] * config["filter_fraction"]) if r["filtered"] else 0
        assert r["train_samples"] == r["candidates"] - dropped
    for route in routes:
        u = results["uncertainty"][route]
        assert len(u["scores"]) == config["synthetic_samples"]
        assert len(u["removed"]) == int(config["synthetic_samples"] * config["filter_fraction"])
        assert min(sorted(u["scores"])[-len(u["removed"]):]) >= u["threshold"]
    annotations = out / "arms" / "annotator" / "annotations" / "items"
    assert len(list(annotations.iterdir())) == config["annotated_images"]
    page = (out / "report" / "index.html").read_text()
    for section in ("quick run", "Per-class IoU", "Test images", "number of synthetic samples", "Uncertainty",
                    "Configuration, seeds", "Seen cars", "Unseen cars", "Both protocols", "follow the generator",
                    "Held out of every label"):
        assert section in page
    assert page.count("<h3>Per-class IoU</h3>") == 2 and "DatasetGAN " in page
    assert "data:image/png;base64," in page

    # a rerun skips every finished stage and gives the same numbers
    capsys.readouterr()
    t0 = time.perf_counter()
    assert main(args) == 0
    assert time.perf_counter() - t0 < first / 2
    again = json.loads((out / "results.json").read_text())
    assert {a: s["miou"] for a, s in again["arms"].items()} == {a: s["miou"] for a, s in results["arms"].items()}
    assert "done before, skipped" in capsys.readouterr().out
    assert json.loads((out / "timings.json").read_text()) == results["timings"]
    assert {"full", "annotator.synthesize", "annotator.n12-all"} <= set(results["timings"])
    # a stage lost (killed before it finished, so before results.json too) is redone alone; everything else is
    # kept, with the times the first run measured
    shutil.rmtree(out / "arms" / "annotator" / "runs" / "n12-all")
    (out / "results.json").unlink()
    kept = (out / "arms" / "full" / "net" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "arms" / "annotator" / "runs" / "n12-all" / "scores.json").is_file()
    assert (out / "arms" / "full" / "net" / "model.safetensors").stat().st_mtime_ns == kept
    redone = json.loads((out / "results.json").read_text())
    assert redone["sweep"] == results["sweep"]        # the same bytes of training give the same scores
    assert {k: v for k, v in redone["timings"].items() if k != "annotator.n12-all"} == {
        k: v for k, v in results["timings"].items() if k != "annotator.n12-all"}
    # other settings are refused in the same directory
    assert main(args + ["--iterations", "7"]) == 2
    assert main(args + ["--noise-mode", "const"]) == 2
