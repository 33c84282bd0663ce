"""Running the shipped model without torch: `--device auto` chooses by the job, damaged graphs are refused
with one line, `beatfix train` without torch says what to install, and a model folder can be retrained into."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beatfix.errors import ModelError
from beatfix.neural import weights
from beatfix.neural.weights import AUTO_GPU_MIN_CHANNEL_MINUTES as LIMIT
from beatfix.neural.weights import choose_device

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "session"


def _never() -> bool:
    raise AssertionError("a runtime was asked about CUDA for a job the CPU does faster")


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


def test_auto_keeps_a_small_job_on_the_cpu_without_asking_for_a_gpu():
    for size in (0.0, 1.3, LIMIT):
        choice = choose_device("auto", channel_minutes=size, onnx_cuda=_never, torch_cuda=_never)
        assert (choice.device, choice.backend) == ("cpu", "onnx")
        assert choice.reason.startswith("device auto: CPU") and f"{size:.1f} channel-minutes" in choice.reason
        assert "\n" not in choice.reason and "warning" not in choice.reason
    unknown = choose_device("auto", onnx_cuda=_never, torch_cuda=_never)
    assert unknown.device == "cpu" and "not known" in unknown.reason


def test_auto_sends_a_large_job_to_the_gpu_that_can_run_it():
    big = LIMIT * 1.5
    onnx = choose_device("auto", channel_minutes=big, onnx_cuda=_yes, torch_cuda=_never)
    assert (onnx.device, onnx.backend) == ("cuda", "onnx") and "onnxruntime CUDA" in onnx.reason
    via_torch = choose_device("auto", channel_minutes=big, onnx_cuda=_no, torch_cuda=_yes)
    assert (via_torch.device, via_torch.backend) == ("cuda", "torch") and "torch CUDA" in via_torch.reason
    none = choose_device("auto", channel_minutes=big, onnx_cuda=_no, torch_cuda=_no)
    assert (none.device, none.backend) == ("cpu", "onnx") and "no CUDA GPU was found" in none.reason


def test_explicit_devices():
    assert choose_device("cpu", onnx_cuda=_never, torch_cuda=_never) == weights.DeviceChoice("cpu", "onnx")
    assert choose_device("cuda:1", onnx_cuda=_yes, torch_cuda=_never) == weights.DeviceChoice("cuda:1", "onnx")
    assert choose_device("CUDA", onnx_cuda=_no, torch_cuda=_yes) == weights.DeviceChoice("cuda", "torch")
    with pytest.raises(ModelError, match="--device cuda: no CUDA GPU"):
        choose_device("cuda", onnx_cuda=_no, torch_cuda=_no)
    with pytest.raises(ModelError, match="use auto, cpu or cuda"):
        choose_device("tpu")


def test_report_says_in_one_plain_line_what_auto_chose(run_cli):
    r = run_cli("report", *sorted(EXAMPLE.glob("*.flac")), "--device", "auto")
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("beatfix: ")]
    chosen = [line for line in lines if line.startswith("device auto:")]
    assert len(chosen) == 1 and "CPU" in chosen[0] and "channel-minutes" in chosen[0], r.stderr
    assert not any(line.startswith("warning:") and "device" in line for line in lines)
    quiet = run_cli("report", *sorted(EXAMPLE.glob("*.flac")), "--device", "auto", "--json")
    assert quiet.exit_code == 0 and "device auto" not in quiet.stderr  # --json: stdout and stderr stay machine-clean
    assert json.loads(quiet.stdout)["engine"] == "neural"


@pytest.mark.parametrize("name", ["encoder.onnx", "decoder.onnx"])
def test_a_corrupted_graph_is_refused_with_one_line(run_cli, tmp_path, name):
    broken = tmp_path / "model"
    shutil.copytree(weights.default_model_dir(), broken)
    data = bytearray((broken / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (broken / name).write_bytes(bytes(data))
    r = run_cli("report", *sorted(EXAMPLE.glob("*.flac")), "--model", broken)
    assert r.exit_code == 1 and "Traceback" not in r.stderr + r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("beatfix: ")]
    assert len(lines) == 1 and lines[0].startswith("error:") and f"{name}: checksum mismatch" in lines[0], r.stderr


def test_running_the_shipped_model_does_not_import_torch():
    """``beatfix report`` on the example session, in a fresh interpreter, on the CPU by ``auto``."""
    code = ("import sys\n"
            "from beatfix.cli import main\n"
            "stems = sorted(str(p) for p in __import__('pathlib').Path(sys.argv[1]).glob('*.flac'))\n"
            "sys.argv = ['beatfix', 'report', *stems, '--json']\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["engine"] == "neural"


def test_train_without_torch_says_what_to_install(tmp_path):
    """torch is the train extra: without it, `beatfix train` is one line naming the extra, exit 1."""
    (tmp_path / "sessions").mkdir()
    code = ("import sys\n"
            "sys.modules['torch'] = None  # as if torch were not installed\n"
            "from beatfix.cli import main\n"
            "sys.argv = ['beatfix', 'train', '--sessions', sys.argv[1], '--out', sys.argv[2]]\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sessions"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and "beatfix[train]" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_model_folder_can_be_retrained_into(run_cli, tmp_path):
    """Every file a saved model holds (and an older beatfix's weights.npz) is known: no --force needed."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in (*weights.MODEL_FILES, "weights.npz"):
        (folder / name).write_text("x")
    r = run_cli("train", "--sessions", tmp_path / "nowhere", "--out", folder)
    assert r.exit_code == 1 and "--sessions" in r.stderr and "other files" not in r.stderr, r.stderr
    (folder / "notes.txt").write_text("mine")
    r = run_cli("train", "--sessions", tmp_path / "nowhere", "--out", folder)
    assert r.exit_code == 1 and "other files" in r.stderr, r.stderr


def test_a_cuda_provider_that_does_not_start_is_said(monkeypatch):
    """onnxruntime quietly runs on its CPU provider when CUDA does not start: auto says so, cuda refuses."""
    from beatfix.neural import runtime

    monkeypatch.setattr(weights, "onnx_cuda_available", lambda: True)
    real = runtime._session
    monkeypatch.setattr(runtime, "_session", lambda model, device: real(model, "cpu"))  # CUDA asked, CPU given
    auto = weights.load_model(None, "auto", channel_minutes=LIMIT * 2)
    assert auto.device == "cpu" and auto.backend == "onnx" and "CUDA provider did not start" in auto.reason
    with pytest.raises(ModelError, match="CUDA provider did not start"):
        weights.load_model(None, "cuda")
