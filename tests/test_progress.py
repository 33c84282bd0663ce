"""Progress: one weighted fraction over a whole job that never goes back, plain stage lines on stderr
when piped, nothing with --quiet, and stdout left to the results."""

from __future__ import annotations

import io
import json
import shutil

import pytest

import beatfix
from beatfix.cli.progress import LineLog, session_label
from beatfix.pipeline.progress import STAGE_WEIGHTS, JobProgress, Throttle, session_fraction


def _stems(folder):
    return sorted(folder.glob("*.wav"))


def test_a_session_fraction_grows_through_the_stages_in_order():
    points = [session_fraction(stage, f) for stage in STAGE_WEIGHTS for f in (0.0, 0.3, 1.0)]
    assert points[0] == 0.0 and points[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(points, points[1:]))
    assert session_fraction("done", 0.0) == 1.0 and session_fraction("an unknown stage", 0.5) is None


def test_the_job_fraction_never_goes_back_over_a_whole_batch():
    job = JobProgress()
    for name in "abc":
        job.update(name, "queued", 0.0)
    seen = []
    # b is retried from the start after its worker died; a report of a arrives after a ended
    script = [("a", "loading", 1.0), ("b", "onsets", 0.5), ("a", "onsets", 1.0), ("b", "loading", 0.0),
              ("b", "onsets", 0.2), ("a", "done", 1.0), ("a", "rendering", 0.5), ("b", "judge", 1.0),
              ("c", "failed", 1.0), ("b", "rendering", 1.0), ("b", "done", 1.0)]
    for report in script:
        seen.append(job.update(*report))
    assert all(b >= a for a, b in zip(seen, seen[1:])), seen
    assert seen[0] < 1 / 3 and seen[-1] == pytest.approx(1.0)
    assert job.n_sessions == 3


def test_a_real_run_reports_only_weighted_stages_and_its_bar_only_grows(small_session, tmp_path):
    folder, truth = small_session
    sessions = tmp_path / "sessions"
    shutil.copytree(folder, sessions / "a")
    shutil.copytree(folder, sessions / "b")
    reports = []
    beatfix.align_batch(sessions, tmp_path / "out", beatfix.AlignOptions(bpm=truth["bpm"], engine="classic"),
                        progress=lambda *r: reports.append(r))
    stages = {stage for _, stage, _ in reports} - {"queued", "done"}
    assert stages == set(STAGE_WEIGHTS), stages  # a stage renamed in the core must be weighted here
    job = JobProgress()
    fractions = [job.update(*r) for r in reports]
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert fractions[-1] == pytest.approx(1.0)
    assert max(fractions[:len(fractions) // 2]) < 0.75  # it grows through the job, not in one jump at the end


def test_the_line_log_writes_one_line_per_stage_and_session_with_times():
    clock = iter([0.0, 0.5, 3.0, 4.0, 6.0, 9.0, 9.5, 10.0])  # one reading per report not ignored
    out = io.StringIO()
    log = LineLog(out, clock=lambda: next(clock))
    log("s", "queued", 0.0)
    for report in [("s", "loading", 0.0), ("s", "loading", 1.0), ("s", "onsets", 0.5), ("s", "onsets", 1.0),
                   ("s", "judge", 0.0), ("s", "rendering", 0.3), ("s", "done", 1.0), ("s", "rendering", 1.0),
                   ("t", "failed", 1.0)]:
        log(*report)
    assert out.getvalue().splitlines() == [
        "beatfix: s | loading done 0.5 s",
        "beatfix: s | onsets done 3.5 s",  # from the end of loading
        "beatfix: s | judge done 5.0 s",
        "beatfix: s | rendering done 0.5 s",
        "beatfix: s | done 9.5 s",
        "beatfix: t | failed 0.0 s",
    ]


def test_throttle_passes_first_and_last_report_of_each_stage():
    sent = []
    throttle = Throttle(lambda *r: sent.append(r), interval_s=3600)
    for i in range(100):
        throttle("s", "rendering", i / 100)
    throttle("s", "rendering", 1.0)
    throttle("s", "writing", 0.0)
    assert sent == [("s", "rendering", 0.0), ("s", "rendering", 1.0), ("s", "writing", 0.0)]


def test_piped_align_logs_stages_on_stderr_and_keeps_stdout_pure_json(run_cli, small_session, tmp_path):
    folder, truth = small_session
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", tmp_path / "out", "--engine", "classic",
                "--json")
    assert r.exit_code == 0, r.stderr
    json.loads(r.stdout)  # nothing but the document
    label = session_label(_stems(folder))
    lines = r.stderr.splitlines()
    for stage in ("loading", "onsets", "judge", "rendering"):
        assert any(line.startswith(f"beatfix: {label} | {stage} done ") and line.endswith(" s") for line in lines), lines
    assert lines[-1].startswith(f"beatfix: {label} | done ")
    assert all(line.startswith("beatfix: ") for line in lines)  # no other noise


def test_quiet_prints_nothing_on_success_and_only_errors_on_failure(run_cli, small_session, tmp_path):
    folder, truth = small_session
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", tmp_path / "one", "--engine", "classic",
                "--quiet")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "-q")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")

    sessions = tmp_path / "sessions"
    shutil.copytree(folder, sessions / "good")
    (sessions / "bad").mkdir()
    (sessions / "bad" / "kick.wav").write_text("not audio")
    r = run_cli("align", "--batch", sessions, "-o", tmp_path / "batch", "--bpm", truth["bpm"], "--engine", "classic",
                "--quiet")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [line for line in r.stderr.splitlines() if line.startswith("error: session bad:")]
    assert len(r.stderr.splitlines()) == 1


def test_piped_batch_logs_every_session_and_json_stays_pure(run_cli, small_session, tmp_path):
    folder, truth = small_session
    sessions = tmp_path / "sessions"
    shutil.copytree(folder, sessions / "a")
    (sessions / "b").mkdir()
    (sessions / "b" / "kick.wav").write_text("not audio")
    args = ("align", "--batch", sessions, "-o", tmp_path / "out", "--bpm", truth["bpm"], "--engine", "classic", "--json")
    r = run_cli(*args)
    assert r.exit_code == 1
    assert [s["status"] for s in json.loads(r.stdout)["sessions"]] == ["ok", "failed"]
    lines = r.stderr.splitlines()
    assert "beatfix: a | onsets done" in r.stderr and any(line.startswith("beatfix: a | done ") for line in lines)
    assert any(line.startswith("beatfix: b | failed ") for line in lines)
    r = run_cli(*args)  # again: a is skipped, and says so
    assert any(line.startswith("beatfix: a | already done, skipped") for line in r.stderr.splitlines())
    assert json.loads(r.stdout)["sessions"][0]["resumed"] is True


def test_executor_flags_belong_to_batches(run_cli, small_session, tmp_path):
    folder, truth = small_session
    r = run_cli("align", *_stems(folder), "-o", tmp_path / "o", "--executor", "dask")
    assert r.exit_code == 2 and "--batch" in r.stderr


def test_dask_without_the_cluster_extra_says_what_to_install(run_cli, small_session, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if beatfix[cluster] were not installed
    folder, _ = small_session
    sessions = tmp_path / "sessions"
    shutil.copytree(folder, sessions / "a")
    r = run_cli("align", "--batch", sessions, "-o", tmp_path / "out", "--executor", "dask")
    assert r.exit_code == 1 and r.stderr.strip() == "error: --executor dask needs Dask: pip install 'beatfix[cluster]'"
    assert not (tmp_path / "out").exists()
