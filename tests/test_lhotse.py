"""asr.data.lhotse_io and ``asr data to-lhotse`` / ``from-lhotse``: Lhotse manifests and back.

Round trips must give the tables back byte for byte; the manifests' numbers are checked against
the audio as soundfile and the project's reader see it, never against numbers typed here; bad
input is one line and writes nothing. lhotse is an optional extra: without it these tests skip
(and fail when CI=true, which installs it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import required_module

from asr.cli import main
from asr.corpora.timit import prepare_timit
from asr.data.audio import load_audio, load_audio_entry
from asr.data.datadir import KNOWN_FILES, DataDir
from asr.data.lhotse_io import RECORDINGS, SUPERVISIONS, from_lhotse, to_lhotse
from asr.data.utt2dur import compute_utt2dur
from asr.errors import AudioError, DataDirError

lhotse = required_module("lhotse", "pip install 'asr[lhotse]'")

RATE = 16000


def write_table(path: Path, rows: dict[str, str]) -> None:
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows.items())), encoding="utf-8")


def tables(path: Path) -> dict[str, bytes]:
    return {name: (path / name).read_bytes() for name in KNOWN_FILES if (path / name).is_file()}


def load(out: Path) -> tuple[object, object]:
    return (
        lhotse.load_manifest(out / RECORDINGS, lhotse.RecordingSet),
        lhotse.load_manifest(out / SUPERVISIONS, lhotse.SupervisionSet),
    )


def write_noise(path: Path, seconds: float, channels: int = 1, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pcm = rng.integers(-8000, 8000, size=(round(seconds * RATE), channels), dtype=np.int16)
    sf.write(path, pcm, RATE, subtype="PCM_16")


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()  # what came before (a progress bar) is not the command's
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("asr data: error: "), err
    return err[0]


# --- (1) the TIMIT sample ---------------------------------------------------------------------


def test_timit_sample_round_trips_through_the_cli(timit_dir: Path, tmp_path: Path) -> None:
    source = prepare_timit(timit_dir, tmp_path / "data", sample=True)["train"]
    assert main(["data", "to-lhotse", str(source), str(tmp_path / "lh")]) == 0
    assert main(["data", "from-lhotse", str(tmp_path / "lh"), str(tmp_path / "back")]) == 0

    # every table comes back byte for byte; nothing more (no segments for whole recordings)
    assert tables(tmp_path / "back") == tables(source)
    assert {"wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "spk2gender"} <= set(tables(source))

    data = DataDir.load(source)
    recordings, supervisions = load(tmp_path / "lh")
    assert [r.id for r in recordings] == sorted(data.wav_scp)
    for rec in recordings:
        path = data.wav_scp[rec.id]
        info = sf.info(path)
        wave, rate = load_audio(path)  # the project's reader (NIST SPHERE)
        assert rec.sources[0].type == "file" and rec.sources[0].source == path
        assert (rec.sampling_rate, rec.num_samples, rec.num_channels) == (
            info.samplerate,
            info.frames,
            info.channels,
        )
        assert rate == rec.sampling_rate and len(wave) == rec.num_samples
        assert rec.duration == len(wave) / rate
    assert [s.id for s in supervisions] == data.utt_ids
    for sup in supervisions:
        rec = recordings[sup.recording_id]
        assert (sup.recording_id, sup.start, sup.duration) == (sup.id, 0.0, rec.duration)
        assert sup.text == data.text[sup.id] and sup.speaker == data.utt2spk[sup.id]
        assert sup.gender == data.extra["spk2gender"][sup.speaker] and sup.channel == 0
    # what Lhotse itself makes of them: valid, and each cut holds the utterance's samples
    lhotse.qa.validate_recordings_and_supervisions(recordings, supervisions)
    cut = next(iter(lhotse.CutSet.from_manifests(recordings, supervisions)))
    wave, _ = data.load_audio(cut.supervisions[0].id)
    np.testing.assert_array_equal(cut.load_audio()[0], wave)


# --- (2) segments -----------------------------------------------------------------------------


def segmented_dir(root: Path) -> tuple[Path, dict[str, tuple[float, float]]]:
    """Two utterances cut from one recording, every optional table there."""
    write_noise(root / "rec1.wav", 3.0)
    data = root / "seg"
    data.mkdir()
    spans = {"spk1-a": (0.37, 1.23), "spk1-b": (1.5, 2.9599375)}  # 2.9599375 s = sample 47359
    write_table(data / "wav.scp", {"rec1": str(root / "rec1.wav")})
    write_table(data / "segments", {u: f"rec1 {s:.2f} {e}" for u, (s, e) in spans.items()})
    write_table(data / "text", {"spk1-a": "hello there", "spk1-b": "general  kenobi"})
    write_table(data / "utt2spk", {"spk1-a": "spk1", "spk1-b": "spk1"})
    write_table(data / "spk2utt", {"spk1": "spk1-a spk1-b"})
    write_table(data / "spk2gender", {"spk1": "m"})
    info = sf.info(str(root / "rec1.wav"))
    write_table(data / "reco2dur", {"rec1": repr(info.frames / info.samplerate)})
    compute_utt2dur(data)  # the project's own utt2dur
    return data, spans


def test_segments_round_trip_and_lhotse_reads_the_same_samples(tmp_path: Path) -> None:
    source, spans = segmented_dir(tmp_path)
    to_lhotse(source, tmp_path / "lh")
    recordings, supervisions = load(tmp_path / "lh")
    info = sf.info(str(tmp_path / "rec1.wav"))
    (rec,) = recordings
    assert (rec.id, rec.sampling_rate, rec.num_samples) == ("rec1", info.samplerate, info.frames)
    data = DataDir.load(source)
    for sup in supervisions:
        start, end = spans[sup.id]
        assert sup.recording_id == "rec1" and sup.start == start and sup.end == end
        assert sup.duration == pytest.approx(end - start, abs=1e-12)
        # Lhotse reads exactly the samples the project's reader gives for the segment
        ours, _ = data.load_audio(sup.id)
        np.testing.assert_array_equal(
            rec.load_audio(offset=sup.start, duration=sup.duration)[0], ours
        )
    cuts = lhotse.CutSet.from_manifests(recordings, supervisions).trim_to_supervisions()
    for cut in cuts:
        np.testing.assert_array_equal(
            cut.load_audio()[0], data.load_audio(cut.supervisions[0].id)[0]
        )

    back = from_lhotse(tmp_path / "lh", tmp_path / "back")
    assert back.segments == data.segments
    assert tables(tmp_path / "back") == tables(source)


def test_pipes_and_multichannel_recordings(tmp_path: Path) -> None:
    write_noise(tmp_path / "mono.wav", 1.2)
    write_noise(tmp_path / "stereo.wav", 0.8, channels=2, seed=1)
    source = tmp_path / "d"
    source.mkdir()
    pipe = f"cat {tmp_path / 'mono.wav'} |"
    write_table(source / "wav.scp", {"a-piped": pipe, "b-stereo": str(tmp_path / "stereo.wav")})
    write_table(source / "text", {"a-piped": "one", "b-stereo": "two"})
    write_table(source / "utt2spk", {"a-piped": "a", "b-stereo": "b"})
    write_table(source / "spk2utt", {"a": "a-piped", "b": "b-stereo"})

    # a pipe runs only when asked to: one error naming the wav.scp line, nothing written
    with pytest.raises(AudioError, match=r"wav\.scp:1: recording 'a-piped': .*--allow-pipes"):
        to_lhotse(source, tmp_path / "no")
    assert not (tmp_path / "no").exists()

    to_lhotse(source, tmp_path / "lh", allow_pipe=True)
    recordings, supervisions = load(tmp_path / "lh")
    piped, stereo = recordings["a-piped"], recordings["b-stereo"]
    assert (piped.sources[0].type, piped.sources[0].source) == ("command", pipe[:-1].strip())
    wave, rate = load_audio_entry(pipe, allow_pipe=True)
    assert (piped.sampling_rate, piped.num_samples) == (rate, len(wave))
    np.testing.assert_array_equal(piped.load_audio()[0], wave)
    info = sf.info(str(tmp_path / "stereo.wav"))
    assert (stereo.num_channels, stereo.num_samples) == (info.channels, info.frames)
    assert supervisions["b-stereo"].channel == [0, 1] and supervisions["a-piped"].channel == 0

    # the two files in either order; the pipe comes back as it was
    from_lhotse([tmp_path / "lh" / SUPERVISIONS, tmp_path / "lh" / RECORDINGS], tmp_path / "back")
    back = tables(tmp_path / "back")
    # utt2dur is always written: here the audio's lengths
    lengths = {"a-piped": len(wave) / rate, "b-stereo": info.frames / info.samplerate}
    assert back.pop("utt2dur") == "".join(f"{u} {d!r}\n" for u, d in lengths.items()).encode()
    assert back == tables(source)


# --- (3) bad input ----------------------------------------------------------------------------


def test_bad_manifests_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _ = segmented_dir(tmp_path)
    to_lhotse(source, tmp_path / "lh")
    out = tmp_path / "out" / "data"

    # a folder without supervisions
    only_recordings = tmp_path / "only"
    only_recordings.mkdir()
    shutil.copy(tmp_path / "lh" / RECORDINGS, only_recordings / RECORDINGS)
    err = one_line_error(capsys, ["data", "from-lhotse", str(only_recordings), str(out)])
    assert err.endswith(
        f"{only_recordings}: no supervisions manifest (*supervisions*.jsonl.gz) found"
    )
    assert not (tmp_path / "out").exists()

    # a supervision pointing to a recording that is not there
    lost = tmp_path / "lost"
    lost.mkdir()
    shutil.copy(tmp_path / "lh" / RECORDINGS, lost / RECORDINGS)
    _, supervisions = load(tmp_path / "lh")
    moved = [
        lhotse.utils.fastcopy(s, recording_id="nope") if s.id == "spk1-b" else s
        for s in supervisions
    ]
    lhotse.SupervisionSet.from_segments(moved).to_file(lost / SUPERVISIONS)
    err = one_line_error(capsys, ["data", "from-lhotse", str(lost), str(out)])
    assert err.endswith(
        f"{lost / SUPERVISIONS}: supervision 'spk1-b' refers to recording 'nope', "
        f"which is not in {lost / RECORDINGS}"
    )
    assert not (tmp_path / "out").exists()

    # not a manifest at all
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    shutil.copy(tmp_path / "lh" / RECORDINGS, garbage / RECORDINGS)
    (garbage / "supervisions.jsonl").write_text("{not json\n", encoding="utf-8")
    err = one_line_error(capsys, ["data", "from-lhotse", str(garbage), str(out)])
    assert f"{garbage / 'supervisions.jsonl'}: not a Lhotse SupervisionSet" in err
    assert not (tmp_path / "out").exists()


def test_a_result_that_fails_validation_leaves_the_old_dir_alone(tmp_path: Path) -> None:
    source, _ = segmented_dir(tmp_path)
    to_lhotse(source, tmp_path / "lh")
    # speakers whose ids sort against the utterances': Kaldi's utt2spk order check fails
    recordings, supervisions = load(tmp_path / "lh")
    swapped = [
        lhotse.utils.fastcopy(s, speaker="zed" if s.id == "spk1-a" else "amy") for s in supervisions
    ]
    bad = tmp_path / "bad"
    bad.mkdir()
    recordings.to_file(bad / RECORDINGS)
    lhotse.SupervisionSet.from_segments(swapped).to_file(bad / SUPERVISIONS)
    # a new folder: neither it nor its parents are left behind
    with pytest.raises(DataDirError, match="sorted by speaker"):
        from_lhotse(bad, tmp_path / "new" / "data")
    assert not (tmp_path / "new").exists()

    out = tmp_path / "existing"
    out.mkdir()
    (out / "wav.scp").write_text("old\n", encoding="utf-8")
    with pytest.raises(DataDirError) as caught:
        from_lhotse(bad, out)
    message = str(caught.value)
    assert "\n" not in message
    assert (
        message.startswith(f"{out / 'utt2spk'}:2: speaker 'amy'") and "sorted by speaker" in message
    )
    assert sorted(p.name for p in out.iterdir()) == ["wav.scp"]
    assert (out / "wav.scp").read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    # good manifests replace the tables; a stale table goes, other files stay
    (out / "feats.scp").write_text("spk1-a old.ark:1\n", encoding="utf-8")
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    from_lhotse(tmp_path / "lh", out)
    assert tables(out) == tables(source)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine\n"


def test_a_data_dir_that_fails_validation_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _ = segmented_dir(tmp_path)
    write_table(source / "utt2spk", {"spk1-a": "spk1"})  # spk1-b left out
    err = one_line_error(capsys, ["data", "to-lhotse", str(source), str(tmp_path / "lh")])
    assert f"{source / 'spk2utt'}:1: utterances of speaker 'spk1' do not match utt2spk" in err
    assert "more; asr data validate lists them" in err
    assert not (tmp_path / "lh").exists()


def test_stale_durations_are_errors(tmp_path: Path) -> None:
    source, _ = segmented_dir(tmp_path)
    write_table(source / "reco2dur", {"rec1": "2.5"})
    with pytest.raises(DataDirError, match=r"reco2dur:1: 'rec1' lasts 2.5 s here but its audio"):
        to_lhotse(source, tmp_path / "lh")
    assert not (tmp_path / "lh").exists()
