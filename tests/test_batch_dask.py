"""A batch on Dask distributed (a 2-worker LocalCluster on this machine): the same outcomes and the same
bytes as the local process pool, a corrupt session reported alone, a killed worker survived."""

from __future__ import annotations

import json
import os
import signal

import pytest

pytest.importorskip("distributed")

import beatfix
from batch_fixtures import CORRUPT, GOOD, documents, make_batch, options, output_digests


@pytest.fixture(scope="module")
def local_run(small_session, tmp_path_factory):
    """The batch through the local process pool, the reference for the Dask runs."""
    folder, truth = small_session
    root = tmp_path_factory.mktemp("batch")
    sessions = make_batch(folder, root)
    outcomes = beatfix.align_batch(sessions, root / "out_local", options(truth), jobs=2)
    return sessions, root / "out_local", outcomes


def test_dask_batch_matches_the_local_pool(local_run, small_session, tmp_path):
    sessions, local_out, local_outcomes = local_run
    _, truth = small_session
    seen = []
    outcomes = beatfix.align_batch(sessions, tmp_path / "out", options(truth), jobs=2, executor="dask",
                                   progress=lambda *report: seen.append(report))
    assert [(o.session, o.ok) for o in outcomes] == [(n, True) for n in GOOD] + [(CORRUPT, False)]
    assert "kick.wav" in outcomes[-1].error and "not a readable audio file" in outcomes[-1].error
    assert documents(outcomes) == documents(local_outcomes)
    digests = output_digests(tmp_path / "out")
    assert digests == output_digests(local_out)
    assert {k.split("/")[0] for k in digests} == set(GOOD)  # the corrupt session wrote nothing
    # stage reports came back from the workers, each session ended once
    assert {s for s, stage, _ in seen if stage == "onsets"} == set(GOOD)
    ends = [(s, stage) for s, stage, _ in seen if stage in ("done", "failed")]
    assert sorted(ends) == sorted([(n, "done") for n in GOOD] + [(CORRUPT, "failed")])


def test_a_worker_killed_mid_batch_still_completes_every_session(local_run, small_session, tmp_path):
    import dask
    from distributed import Client, LocalCluster

    sessions, local_out, local_outcomes = local_run
    _, truth = small_session
    killed = []
    # allowed-failures 0: the scheduler gives the task up at once (KilledWorker), so the session
    # completes only through beatfix's own retry, not the scheduler's rescheduling
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=0) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)  # worker address -> process id

        def kill_first_busy_worker(session: str, stage: str, fraction: float) -> None:
            if killed or stage != "onsets":
                return
            for address, keys in client.processing().items():
                if any(f"-{session}-" in str(k) for k in keys):
                    os.kill(pids[address], signal.SIGKILL)  # the worker dies in the middle of this session
                    killed.append(session)
                    return

        outcomes = beatfix.align_batch(sessions, tmp_path / "out", options(truth), executor="dask",
                                       scheduler=cluster.scheduler_address, progress=kill_first_busy_worker)
    assert killed, "no worker was killed: the test did not test anything"
    assert [(o.session, o.ok) for o in outcomes] == [(n, True) for n in GOOD] + [(CORRUPT, False)]
    assert documents(outcomes) == documents(local_outcomes)
    assert output_digests(tmp_path / "out") == output_digests(local_out)


def test_an_unreachable_scheduler_is_one_clear_error(local_run, small_session, tmp_path, monkeypatch):
    from beatfix.errors import InputError
    from beatfix.pipeline import dask_batch

    monkeypatch.setattr(dask_batch, "CONNECT_TIMEOUT_S", 2.0)

    sessions, _, _ = local_run
    _, truth = small_session
    with pytest.raises(InputError, match="--scheduler tcp://127.0.0.1:1: cannot reach"):
        beatfix.align_batch(sessions, tmp_path / "out", options(truth), executor="dask",
                            scheduler="tcp://127.0.0.1:1")


def test_the_command_line_runs_a_batch_on_a_local_dask_cluster(run_cli, local_run, small_session, tmp_path):
    sessions, local_out, _ = local_run
    _, truth = small_session
    r = run_cli("align", "--batch", sessions, "-o", tmp_path / "out", "--bpm", truth["bpm"], "--engine", "classic",
                "--executor", "dask", "--jobs", "2", "--json")
    assert r.exit_code == 1  # the corrupt session
    doc = json.loads(r.stdout)
    assert [s["status"] for s in doc["sessions"]] == ["ok"] * len(GOOD) + ["failed"] and doc["failed"] == 1
    assert output_digests(tmp_path / "out") == output_digests(local_out)
