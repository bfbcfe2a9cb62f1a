"""The stage runner of long pipelines: a run directory refuses other settings and foreign contents, a stage with
its done mark is skipped, timings survive a new process, and a stage that forgets its done mark is a bug."""

import json

import pytest

from ganfactory.errors import GanfactoryError
from ganfactory.runs import TIMINGS, Run


def test_stages_run_once_and_keep_their_times(tmp_path, capsys):
    config = {"benchmark": "x", "config": {"a": 1, "b": 2}}
    run = Run.open(tmp_path / "run", config, "run.json", "demo")
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == config
    calls = []

    def stage():
        calls.append(1)
        run.write_json("out/result.json", {"value": 3})

    run.stage("first", stage, done=run.root / "out" / "result.json", what="first")
    assert calls == [1] and "first" in run.timings
    again = Run.open(tmp_path / "run", config, "run.json", "demo")
    assert again.timings == run.timings                         # read back by a new process
    again.stage("first", stage, done=again.root / "out" / "result.json", what="first")
    assert calls == [1] and "first: done before, skipped" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / TIMINGS).read_text()) == again.timings
    assert again.stage("always", lambda: 7) == 7                # no done mark: runs every time


def test_other_settings_foreign_contents_and_missing_marks_are_refused(tmp_path):
    Run.open(tmp_path / "run", {"config": {"a": 1, "b": 2}}, "run.json", "demo")
    with pytest.raises(GanfactoryError, match=r"other settings \(differing: b\)"):
        Run.open(tmp_path / "run", {"config": {"a": 1, "b": 3}}, "run.json", "demo")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(GanfactoryError, match="not empty and holds no demo run"):
        Run.open(tmp_path / "other", {}, "run.json", "demo")
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "report").mkdir()
    Run.open(tmp_path / "ok", {}, "run.json", "demo", allowed=("report",))
    run = Run.open(tmp_path / "fresh", {}, "run.json", "demo")
    with pytest.raises(RuntimeError, match="without writing its done mark"):
        run.stage("bad", lambda: None, done=run.root / "never.json")
