"""asr.corpora.timit and `asr prepare timit`: the sample split, Kaldi's sets, labels, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asr import cli
from asr.corpora import timit
from asr.corpora.timit import prepare_timit, read_speaker_list
from asr.data.audio import read_sphere_header
from asr.data.datadir import read_kaldi_map
from asr.data.validate import validate_datadir
from asr.errors import CorpusError
from asr.score.normalize import load_phone_map

SPLITS = ("train", "dev", "test")
SAMPLE_DEV = ["falk0", "maeb0"]  # F DR3, M DR4
SAMPLE_TEST = ["fvmh0", "marc0"]  # F DR1, M DR2


def _table(path: Path) -> dict[str, str]:
    return read_kaldi_map(path, allow_empty=True)


def _ctm(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for line in path.read_text().splitlines():
        utt, channel, start, dur, phone = line.split()
        assert channel == "1"
        rows.setdefault(utt, []).append((start, dur, phone))
    return rows


def _split_file(data: Path) -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {s: [] for s in SPLITS}
    for line in (data / "split.txt").read_text().splitlines():
        if not line.startswith("#"):
            sets[line.split()[0]].append(line.split()[1])
    return sets


# ---------------------------------------------------------------------------------------------
# The phone maps


def test_phone_maps_are_kaldis_columns() -> None:
    m61_48 = load_phone_map("timit61-48")
    m48_39 = load_phone_map("timit48-39")
    m61_39 = load_phone_map("timit61-39")
    assert len(m61_48) == 61 and m61_48["q"] == ""  # q deleted
    assert len({v for v in m61_48.values() if v}) == 48
    assert set(m48_39) == {v for v in m61_48.values() if v}
    assert len(set(m48_39.values())) == 39
    assert m61_48["h#"] == m61_48["pau"] == "sil"
    assert (m61_48["bcl"], m61_48["pcl"], m61_48["epi"]) == ("vcl", "cl", "epi")
    for phone, target in m61_48.items():  # 61 -> 48 -> 39 is the 61 -> 39 map
        assert (m48_39[target] if target else "") == m61_39[phone]


# ---------------------------------------------------------------------------------------------
# The ../shared sample


@pytest.mark.integration
def test_sample_split_labels_and_times(timit_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    dirs = prepare_timit(timit_dir, data, sample=True)
    assert dirs == {s: data / s for s in SPLITS}
    for folder in dirs.values():
        assert validate_datadir(folder) == []
    speakers = {s: sorted(set(_table(dirs[s] / "utt2spk").values())) for s in SPLITS}
    assert speakers["dev"] == SAMPLE_DEV and speakers["test"] == SAMPLE_TEST
    assert len(speakers["train"]) == 12
    assert not set(speakers["train"]) & set(SAMPLE_DEV + SAMPLE_TEST)
    assert _split_file(data) == speakers
    counts = {s: len(_table(dirs[s] / "utt2spk")) for s in SPLITS}
    assert counts == {"train": 96, "dev": 16, "test": 16}  # 8 SI+SX per speaker
    # every dialect region stays in train; the held-out pairs are F+M of different regions
    dialects = {s: set(_table(dirs[s] / "utt2dialect").values()) for s in SPLITS}
    assert dialects["train"] == {f"DR{n}" for n in range(1, 9)}
    assert len(dialects["dev"] | dialects["test"]) == 4
    m61_48, m48_39, m61_39 = (load_phone_map(n) for n in ("timit61-48", "timit48-39", "timit61-39"))
    seen_48: set[str] = set()
    for split in SPLITS:
        folder = dirs[split]
        utt2spk = _table(folder / "utt2spk")
        assert not [u for u in utt2spk if "_sa" in u]
        gender = _table(folder / "spk2gender")
        assert gender == {s: s[0] for s in speakers[split]}
        text, phones61 = _table(folder / "text"), _table(folder / "phones61")
        wav, words, utt2dur = (_table(folder / n) for n in ("wav.scp", "words", "utt2dur"))
        ctm48, ctm61 = _ctm(folder / "phones.ctm"), _ctm(folder / "phones61.ctm")
        assert set(text) == set(phones61) == set(ctm48) == set(ctm61) == set(utt2spk)
        for utt, spk in utt2spk.items():
            speaker, name = utt.split("_")
            assert speaker == spk
            source = Path(wav[utt])
            assert source.is_absolute() and source.stem.lower() == name
            assert source.parent.name.lower() == speaker
            # text: Kaldi's -to 48 of the .PHN phones (h# -> sil, q deleted)
            phn = [line.split() for line in source.with_suffix(".PHN").read_text().splitlines()]
            assert phones61[utt].split() == [p for _, _, p in phn]
            expected48 = [m61_48[p] for _, _, p in phn if m61_48[p]]
            assert text[utt].split() == expected48
            seen_48.update(expected48)
            # the 39-phone fold via the maps, either way round
            folded = [m48_39[p] for p in text[utt].split()]
            assert folded == [m61_39[p] for _, _, p in phn if m61_39[p]]
            # the ctm times are the .PHN sample numbers / 16000, exactly
            assert [(float(s), float(d), p) for s, d, p in ctm61[utt]] == [
                (int(a) / 16000, (int(b) - int(a)) / 16000, p) for a, b, p in phn
            ]
            assert [p for _, _, p in ctm48[utt]] == text[utt].split()
            starts48 = [float(s) for s, _, _ in ctm48[utt]]
            assert starts48 == [int(a) / 16000 for a, _, p in phn if m61_48[p]]
            wrd = source.with_suffix(".WRD").read_text().split()[2::3]
            assert words[utt].split() == wrd
            header = read_sphere_header(source)
            assert float(utt2dur[utt]) == header["sample_count"] / 16000
    assert seen_48 <= set(m48_39)


@pytest.mark.integration
def test_cli_sample(timit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    assert cli.main(["prepare", "timit", str(timit_dir), str(data), "--sample"]) == 0
    out = capsys.readouterr().out
    assert f"{data / 'train'}: 96 utterances, 12 speakers" in out
    assert f"{data / 'dev'}: 16 utterances, 2 speakers: falk0 maeb0" in out
    assert f"{data / 'test'}: 16 utterances, 2 speakers: fvmh0 marc0" in out
    # without --sample the sample is no TIMIT tree (no TEST/): one line naming the path
    assert cli.main(["prepare", "timit", str(timit_dir), str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    problem = "not a TIMIT directory (no TRAIN/ and TEST/ folders in it)"
    assert err == [f"asr prepare: error: {timit_dir}: {problem}"]
    assert not (tmp_path / "e").exists()


@pytest.mark.integration
def test_sample_folds_test_every_speaker_once(timit_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    dirs = prepare_timit(timit_dir, data, sample=True, folds=8)
    everyone = _table(data / "all" / "utt2spk")
    genders = _table(data / "all" / "spk2gender")
    dialect = {everyone[u]: d for u, d in _table(data / "all" / "utt2dialect").items()}
    assert len(set(everyone.values())) == 16 and len(everyone) == 128  # SI + SX, no SA
    tested: list[str] = []
    for k in range(1, 9):
        sets = {name: _table(dirs[f"fold{k}/{name}"] / "utt2spk") for name in SPLITS}
        test_speakers = set(sets["test"].values())
        # a woman and a man of two dialect regions, all their utterances, heard nowhere else
        assert sorted(genders[s] for s in test_speakers) == ["f", "m"]
        assert len({dialect[s] for s in test_speakers}) == 2
        assert set(sets["test"]) == {u for u, s in everyone.items() if s in test_speakers}
        assert not test_speakers & (set(sets["train"].values()) | set(sets["dev"].values()))
        # dev: each of the other 14 speakers' first SI sentence, which no one else reads
        assert sorted(sets["dev"].values()) == sorted(set(everyone.values()) - test_speakers)
        for utt, speaker in sets["dev"].items():
            own_si = sorted(u for u, s in everyone.items() if s == speaker and "_si" in u)
            assert utt == own_si[0]
        assert not set(sets["dev"]) & set(sets["train"])
        assert set(sets["train"]) | set(sets["dev"]) | set(sets["test"]) == set(everyone)
        for name in SPLITS:
            assert validate_datadir(dirs[f"fold{k}/{name}"]) == []
        # every sentence of the sample is read by one speaker: no test prompt seen in training
        assert (data / f"fold{k}" / "test_seen_prompt").read_text() == ""
        tested += sorted(test_speakers)
    assert sorted(tested) == sorted(set(everyone.values()))
    # the whole sample, for the model trained after cross-validation: every speaker trains,
    # dev is each one's first SI sentence (the folds' rule), nothing is tested
    full = {name: _table(dirs[f"full/{name}"] / "utt2spk") for name in ("train", "dev")}
    assert sorted(full["dev"].values()) == sorted(set(everyone.values()))
    for utt, speaker in full["dev"].items():
        assert utt == sorted(u for u, s in everyone.items() if s == speaker and "_si" in u)[0]
    assert set(full["train"]) == set(everyone) - set(full["dev"])
    assert not (data / "full" / "test").exists()
    rows = [line.split() for line in (data / "folds.txt").read_text().splitlines()]
    assert [r[:2] for r in rows if not r[0].startswith("#")] == [
        [str(k), s] for k in range(1, 9) for s in tested[2 * k - 2 : 2 * k]
    ]


def test_seen_prompts_are_test_sentences_read_in_train_or_dev() -> None:
    fold = {
        "train": ["fa_sx1", "mb_sx2", "mb_si7"],
        "dev": ["fa_si3"],
        "test": ["mc_sx1", "mc_sx9", "fd_si3", "fd_si8"],
    }
    assert timit.seen_prompts(fold) == ["mc_sx1", "fd_si3"]
    assert timit.prompt("fadg0_sx19") == "sx19"


@pytest.mark.integration
def test_folds_need_a_sample_and_enough_speakers(
    timit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["prepare", "timit", str(timit_dir), str(tmp_path / "d")]
    assert cli.main([*args, "--folds", "8"]) == 1
    assert capsys.readouterr().err.strip() == (
        "asr prepare: error: prepare timit: --folds is for a --sample corpus"
    )
    assert cli.main([*args, "--sample", "--folds", "9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"asr prepare: error: {timit_dir}: 9 folds need at least 9 women and 9 men "
        "(the corpus has 8 and 8)"
    ]
    assert cli.main([*args, "--sample", "--folds", "1"]) == 1
    assert "at least 2 folds" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    # two folds: four women and four men tested in each
    assert cli.main([*args, "--sample", "--folds", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'd' / 'fold1' / 'test'}: 64 utterances, 8 speakers" in out


# ---------------------------------------------------------------------------------------------
# Kaldi's standard sets, on tiny corpora made from the sample

# (part, dialect, speaker) of the tiny corpus, copied from the sample's TRAIN speakers
LAYOUT = [
    ("TRAIN", "DR1", "FVMH0"),
    ("TRAIN", "DR2", "MARC0"),
    ("TRAIN", "DR6", "MBMA1"),
    ("TEST", "DR3", "FALK0"),
    ("TEST", "DR4", "MAEB0"),
    ("TEST", "DR5", "FTLG0"),  # in no list: unused, as Kaldi's 94 other TEST speakers
]
UTTS = ("SA1", "SI1466", "SX116")  # SA1 must be left out; only the first speaker has these


def _make_corpus(timit_dir: Path, root: Path, lower: bool = False, utts: int = 2) -> Path:
    """ROOT/TIMIT with LAYOUT's speakers, SA1 and ``utts`` SI/SX utterances each."""

    def name(text: str) -> str:
        return text.lower() if lower else text

    corpus = root / name("TIMIT")
    for part, dialect, speaker in LAYOUT:
        source = next(timit_dir.glob(f"TRAIN/*/{speaker}"))
        target = corpus / name(part) / name(dialect) / name(speaker)
        target.mkdir(parents=True)
        stems = ["SA1"] + sorted({p.stem for p in source.glob("S[IX]*.WAV")})[:utts]
        for stem in stems:
            for ext in ("WAV", "PHN", "WRD", "TXT"):
                shutil.copy(source / f"{stem}.{ext}", target / name(f"{stem}.{ext}"))
    return corpus


def _lists(root: Path, dev=("falk0",), test=("MAEB0",)) -> tuple[Path, Path]:
    dev_list, test_list = root / "dev.list", root / "test.list"
    dev_list.write_text("# a comment\n" + "".join(f"{s}\n" for s in dev))
    test_list.write_text("".join(f"{s}\n" for s in test))
    return dev_list, test_list


@pytest.mark.integration
@pytest.mark.parametrize("lower", [False, True], ids=["upper", "lower"])
def test_standard_sets_from_lists(timit_dir: Path, tmp_path: Path, lower: bool) -> None:
    corpus = _make_corpus(timit_dir, tmp_path, lower=lower)
    dev_list, test_list = _lists(tmp_path)
    data = tmp_path / "data"
    dirs = prepare_timit(corpus, data, dev_list=dev_list, test_list=test_list)
    speakers = {s: sorted(set(_table(dirs[s] / "utt2spk").values())) for s in SPLITS}
    assert speakers == {"train": ["fvmh0", "marc0", "mbma1"], "dev": ["falk0"], "test": ["maeb0"]}
    assert _split_file(data) == speakers
    for split in SPLITS:
        assert validate_datadir(dirs[split]) == []
        utts = _table(dirs[split] / "utt2spk")
        assert len(utts) == 2 * len(speakers[split])  # SA1 left out
        assert all("_s" in u and "_sa" not in u for u in utts)
        assert all(u == u.lower() for u in utts)
        assert _table(dirs[split] / "spk2gender") == {s: s[0] for s in speakers[split]}
    assert _table(dirs["test"] / "utt2dialect") == {
        "maeb0_si1411": "DR4",
        "maeb0_si2250": "DR4",
    }


def test_default_lists_are_kaldis() -> None:
    dev, test = (
        read_speaker_list(timit.DEV_SPEAKER_LIST),
        read_speaker_list(timit.TEST_SPEAKER_LIST),
    )
    assert len(dev) == 50 and len(test) == 24 and not set(dev) & set(test)
    assert (dev[0], test[0]) == ("faks0", "mdab0")
    assert {s[0] for s in test} == {"f", "m"}


# ---------------------------------------------------------------------------------------------
# Bad input: one error naming the path, before anything is written


def _fails(corpus: Path, data: Path, match: str, **kwargs) -> None:
    with pytest.raises(CorpusError, match=match) as info:
        prepare_timit(corpus, data, **kwargs)
    assert "\n" not in str(info.value)
    assert not data.exists()


@pytest.mark.integration
def test_bad_input(timit_dir: Path, tmp_path: Path) -> None:
    corpus = _make_corpus(timit_dir, tmp_path / "c", utts=1)
    dev_list, test_list = _lists(tmp_path)
    lists = {"dev_list": dev_list, "test_list": test_list}
    data = tmp_path / "data"
    _fails(tmp_path / "nowhere", data, "not a TIMIT directory")
    _fails(corpus / "TRAIN", data, rf"^{corpus / 'TRAIN'}: not a TIMIT directory")
    # a listed speaker missing from TEST, or a TRAIN speaker in a list
    missing = tmp_path / "missing.list"
    missing.write_text("mzzz9\n")
    _fails(
        corpus,
        data,
        rf"^{missing}: dev speaker mzzz9 not found under",
        dev_list=missing,
        test_list=test_list,
    )
    trainee = tmp_path / "trainee.list"
    trainee.write_text("fvmh0\n")
    _fails(
        corpus,
        data,
        r"test speaker fvmh0 not found under .*TRAIN speaker",
        dev_list=dev_list,
        test_list=trainee,
    )
    _fails(corpus, data, r"speaker falk0 is in the dev list", dev_list=dev_list, test_list=dev_list)
    # a .PHN with an unknown phone: file and line
    phn = next(corpus.glob("TEST/DR4/MAEB0/SI*.PHN"))
    good = phn.read_text()
    lines = good.splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0] + " xx"
    phn.write_text("\n".join(lines) + "\n")
    _fails(corpus, data, rf"^{phn}:3: unknown phone 'xx'", **lists)
    phn.write_text("0 100\n")
    _fails(corpus, data, rf"^{phn}:1: expected 'START END LABEL'", **lists)
    phn.write_text(good)
    # a .WAV without its .PHN (or .WRD)
    wav = phn.with_suffix(".WAV")
    phn.unlink()
    _fails(corpus, data, rf"^{wav}: no \.PHN transcript beside it", **lists)
    phn.write_text(good)
    wrd = phn.with_suffix(".WRD")
    wrd.unlink()
    _fails(corpus, data, rf"^{wav}: no \.WRD transcript beside it", **lists)
    # --sample without TEST is fine, but needs two women and two men
    shutil.rmtree(corpus / "TEST")
    _fails(corpus, data, r"a --sample corpus needs at least two women", sample=True)
    _fails(corpus, data, r"no TRAIN/ and TEST/ folders", **lists)


@pytest.mark.integration
def test_cli_lists_and_errors(
    timit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _make_corpus(timit_dir, tmp_path, utts=1)
    dev_list, test_list = _lists(tmp_path)
    args = ["prepare", "timit", str(corpus), str(tmp_path / "d")]
    lists = ["--dev-speakers", str(dev_list), "--test-speakers", str(test_list)]
    assert cli.main([*args, *lists]) == 0
    assert f"{tmp_path / 'd' / 'test'}: 1 utterances, 1 speakers" in capsys.readouterr().out
    assert cli.main([*args, "--sample", *lists]) == 1
    assert "no speaker lists" in capsys.readouterr().err
    # the default lists name speakers this tiny corpus does not have
    assert cli.main(["prepare", "timit", str(corpus), str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err
    assert f"{timit.DEV_SPEAKER_LIST}: dev speaker faks0 not found under {corpus}/TEST" in err
