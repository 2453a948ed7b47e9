"""The yes/no recipe end to end on the real corpus: Kaldi's recipe reaches 0.00% WER, so must we."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asr.package import load_package

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "yesno" / "run.sh"


@pytest.mark.integration
@pytest.mark.slow
def test_yesno_recipe_reaches_zero_wer(yesno_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    data, exp = tmp_path / "data", tmp_path / "exp"
    result = subprocess.run(
        [
            "bash",
            str(RECIPE),
            "--corpus-dir",
            str(yesno_dir),
            "--data",
            str(data),
            "--exp",
            str(exp),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wer = re.search(r"^%WER (\S+) \[ (\d+) / (\d+),", result.stdout, re.MULTILINE)
    assert wer, result.stdout[-2000:]
    assert wer.group(3) == "240"  # 30 test recordings x 8 words
    assert wer.group(2) == "0" and wer.group(1) == "0.00", wer.group(0)

    # every stage left its inspectable files behind
    hyps = (exp / "decode_test" / "text").read_text().splitlines()
    refs = (data / "test" / "text").read_text().splitlines()
    assert hyps == refs
    assert (exp / "curves.png").stat().st_size > 0
    history = (exp / "history.tsv").read_text().splitlines()
    log_epochs = [x for x in (exp / "train.log").read_text().splitlines() if x.startswith("epoch ")]
    assert len(log_epochs) == len(history) - 1 > 0
    package = load_package(exp / "final.pt")
    assert package.tokens[0] == "<blk>" and set(package.tokens[1:]) == {"YES", "NO"}
