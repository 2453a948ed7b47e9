"""``asr decode``: a model package over a feature data directory, written as a Kaldi text file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_train import write_synthetic

from asr.cli import main
from asr.errors import DataDirError, PackageError
from asr.inference import decode_datadir
from asr.score import read_transcripts, wer


@pytest.fixture
def trained(tiny_trained_model: tuple[Path, Path]) -> tuple[Path, Path]:
    return tiny_trained_model


def test_decode_writes_every_utterance_and_recognises_them(trained, tmp_path) -> None:
    model, test = trained
    summary = decode_datadir(model, test, tmp_path / "out", batch_frames=60)
    hyps = read_transcripts(tmp_path / "out" / "text")
    refs = read_transcripts(test / "text")
    assert summary.decoded == 20 and not summary.failed
    assert sorted(hyps) == sorted(refs)
    assert wer(refs, hyps).wer <= 10.0  # the synthetic task is easy for the trained model


def test_batching_does_not_change_the_hypotheses(trained, tmp_path) -> None:
    model, test = trained
    decode_datadir(model, test, tmp_path / "one", batch_frames=1)  # one utterance per batch
    decode_datadir(model, test, tmp_path / "all", batch_frames=100000)
    assert (tmp_path / "one" / "text").read_text() == (tmp_path / "all" / "text").read_text()


def test_features_unlike_the_training_ones_are_refused(trained, tmp_path) -> None:
    model, test = trained
    other = tmp_path / "other"
    write_synthetic(other, 3, seed=4)
    config = yaml.safe_load((other / "feats.yaml").read_text())
    config["cmvn"] = "utterance"
    (other / "feats.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DataDirError, match=r"feats.yaml: features differ .* \(in cmvn\)"):
        decode_datadir(model, other, tmp_path / "out")
    assert not (tmp_path / "out" / "text").exists()


def test_cli_decode_and_a_broken_model_file(trained, tmp_path, capsys) -> None:
    model, test = trained
    assert main(["decode", str(model), str(test), str(tmp_path / "out"), "--threads", "1"]) == 0
    assert len((tmp_path / "out" / "text").read_text().splitlines()) == 20
    capsys.readouterr()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(model.read_bytes()[:1000])
    assert main(["decode", str(broken), str(test), str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(broken) in err[0]
    with pytest.raises(PackageError):
        decode_datadir(broken, test, tmp_path / "out3")
