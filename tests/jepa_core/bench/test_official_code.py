"""``--suite --official DIR``: folders that are not a checkout fail in one line; the checkout's commit."""

from __future__ import annotations

import subprocess

import pytest

from jepa_core.bench.cli import main
from jepa_core.bench.official_code import official_commit

pytestmark = pytest.mark.usefixtures("keep_torch_threads")


@pytest.mark.parametrize("kind", ["empty", "absent", "file", "half"])
def test_main__official_not_a_checkout__exits_2_naming_the_folder(tmp_path, capsys, kind):
    folder = tmp_path / {"empty": "", "absent": "absent", "file": "f.txt", "half": ""}[kind]
    if kind == "file":
        folder.write_text("")
    if kind == "half":  # one of the official files, not the others
        (folder / "src/models").mkdir(parents=True)
        (folder / "src/models/vision_transformer.py").write_text("")
    assert main(["--suite", "--device", "cpu", "--official", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--official {folder}:" in err and "Traceback" not in err


def test_official_commit__head_of_its_own_checkout_only(tmp_path):
    inner = tmp_path / "not_a_checkout"
    inner.mkdir()
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git[:3], "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert official_commit(tmp_path) == head.stdout.strip()
    assert official_commit(inner) == "unknown"  # inside a repository, but not a checkout of its own
