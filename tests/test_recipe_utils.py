"""The recipes' shared shell code: recipes/utils/parse_options.sh (Kaldi-style options),
stage.sh (--stage/--stop-stage), asr_train.sh (torchrun or not) and path.sh, run with bash on
small scripts made here; then every recipe script: it sources its path.sh, its --help lists
(and its parser accepts) every option it had, and it finds asr with no .venv on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from asr.jobs.launcher import Launcher

REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPES = REPO_ROOT / "recipes"
UTILS = RECIPES / "utils"
# a PATH with bash and coreutils but without the project's virtual environment
BARE_PATH = os.pathsep.join(["/usr/bin", "/bin"])


def _bash(script: Path, *args: str, path: str = BARE_PATH, cwd: Path | None = None):
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/")},
        cwd=cwd,
        timeout=60,
    )


def _options_script(tmp_path: Path) -> Path:
    """A script in the recipes' style: a header, defaults with comments, a sourced conf file of
    more defaults, parse_options.sh, then the values and positional arguments it ended with."""
    (tmp_path / "extra.conf").write_text("# not a comment of an option\n\nlevel=3   # how loud\n")
    script = tmp_path / "demo.sh"
    script.write_text(
        f"""#!/usr/bin/env bash
# Demo: a script of the recipes' kind.
#
#   ./demo.sh [--foo-bar N] [--sample] [--words LIST] FILE...
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
# Why foo bar is 1: the first line of its comment
# and the second.
foo_bar=1           # the number of foos
sample=false        # a flag
verbose=true        # a flag that is on
words="-1,0,1"      # a list of numbers
empty=
. extra.conf
. {UTILS}/parse_options.sh
late=0   # set after the parser: not an option
for v in foo_bar sample verbose words empty level late; do echo "$v=${{!v}}"; done
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
"""
    )
    return script


def _values(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def _args(stdout: str) -> list[str]:
    return [line[4:] for line in stdout.splitlines() if line.startswith("arg=")]


def test_defaults_stay_without_options(tmp_path: Path) -> None:
    done = _bash(_options_script(tmp_path))
    assert done.returncode == 0, done.stderr
    assert _values(done.stdout) == {
        "foo_bar": "1",
        "sample": "false",
        "verbose": "true",
        "words": "-1,0,1",
        "empty": "",
        "level": "3",
        "late": "0",
        "nargs": "0",
    }


def test_value_options_set_their_variables(tmp_path: Path) -> None:
    # --foo-bar sets foo_bar; a value may start with a dash or hold spaces; the last one wins
    args = ["--foo-bar", "7", "--words", "-2,5", "--empty", "a b", "--level", "1", "--level", "2"]
    done = _bash(_options_script(tmp_path), *args)
    assert done.returncode == 0, done.stderr
    values = _values(done.stdout)
    assert values["foo_bar"] == "7"
    assert values["words"] == "-2,5"
    assert values["empty"] == "a b"
    assert values["level"] == "2"  # an option from the sourced conf file
    assert values["sample"] == "false" and values["late"] == "0"


def test_equals_form(tmp_path: Path) -> None:
    done = _bash(_options_script(tmp_path), "--foo-bar=x=y", "--words=", "--foo_bar=z")
    assert done.returncode == 0, done.stderr
    values = _values(done.stdout)
    assert values["foo_bar"] == "z"  # --foo_bar is the same option, given last
    assert values["words"] == ""


@pytest.mark.parametrize(
    ("args", "sample", "verbose", "positional"),
    [
        (["--sample"], "true", "true", []),
        (["--sample", "--foo-bar", "2"], "true", "true", []),
        (["--sample", "true", "--verbose", "false"], "true", "false", []),
        (["--sample=true", "--verbose=false"], "true", "false", []),
        (["--sample", "--sample", "false"], "false", "true", []),
        (["--verbose"], "false", "true", []),
        (["--sample", "input.txt"], "true", "true", ["input.txt"]),
    ],
)
def test_flags(
    tmp_path: Path, args: list[str], sample: str, verbose: str, positional: list[str]
) -> None:
    """A variable whose default is true or false: alone it means true, or takes true/false."""
    done = _bash(_options_script(tmp_path), *args)
    assert done.returncode == 0, done.stderr
    values = _values(done.stdout)
    assert (values["sample"], values["verbose"]) == (sample, verbose)
    assert _args(done.stdout) == positional


def test_a_flag_refuses_other_values(tmp_path: Path) -> None:
    done = _bash(_options_script(tmp_path), "--sample=yes")
    assert done.returncode == 1
    assert "--sample" in done.stderr and "'yes'" in done.stderr
    assert "foo_bar=" not in done.stdout  # the script stopped at the parser


@pytest.mark.parametrize("option", ["--nope", "--late", "--PATH", "--help-message", "--_po_name"])
def test_unknown_option_is_one_line_and_exit_1(tmp_path: Path, option: str) -> None:
    # --late: the script sets it only after parsing; --PATH: not a script variable
    done = _bash(_options_script(tmp_path), "--foo-bar", "2", option, "x")
    assert done.returncode == 1
    assert done.stderr.strip() == f"demo.sh: unknown option {option} (see demo.sh --help)"
    assert done.stdout == ""


def test_value_option_without_value(tmp_path: Path) -> None:
    done = _bash(_options_script(tmp_path), "--foo-bar")
    assert done.returncode == 1
    assert "--foo-bar needs a value" in done.stderr


def test_positional_arguments_remain(tmp_path: Path) -> None:
    # parsing stops at the first argument that is not an option: what follows is the script's
    done = _bash(_options_script(tmp_path), "--foo-bar", "2", "a", "--words", "x", "b c")
    assert done.returncode == 0, done.stderr
    values = _values(done.stdout)
    assert values["foo_bar"] == "2" and values["words"] == "-1,0,1"
    assert _args(done.stdout) == ["a", "--words", "x", "b c"]
    # -- ends the options and is dropped
    done = _bash(_options_script(tmp_path), "--sample", "--", "--foo-bar", "5")
    assert done.returncode == 0, done.stderr
    assert _values(done.stdout)["foo_bar"] == "1"
    assert _args(done.stdout) == ["--foo-bar", "5"]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_each_option_with_its_comments(tmp_path: Path, flag: str) -> None:
    # options before --help do not change the defaults it shows; it runs nothing of the script
    script = _options_script(tmp_path)
    done = _bash(script, "--foo-bar", "9", "--sample", flag, "--nope")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # the opening comment block, "# " removed, then the options in the order of the script
    usage = "  ./demo.sh [--foo-bar N] [--sample] [--words LIST] FILE..."
    assert lines[:3] == ["Demo: a script of the recipes' kind.", "", usage]
    assert "set -euo pipefail" not in done.stdout and "foo_bar=" not in done.stdout
    options = [line.strip() for line in lines if line.startswith("  --")]
    assert options == [
        "--foo-bar [1]",
        "--sample [false]",
        "--verbose [true]",
        "--words [-1,0,1]",
        "--empty []",
        "--level [3]",
    ]
    # each option's comments, indented below it: the lines right above, then the one beside
    start = lines.index("  --foo-bar [1]")
    assert lines[start + 1 : start + 4] == [
        "      Why foo bar is 1: the first line of its comment",
        "      and the second.",
        "      the number of foos",
    ]
    assert lines[lines.index("  --sample [false]") + 1] == "      a flag"
    assert lines[lines.index("  --level [3]") + 1] == "      how loud"
    assert "not a comment of an option" not in done.stdout  # a blank line separated it
    assert "--late" not in done.stdout


def test_help_prints_help_message_when_the_script_has_one(tmp_path: Path) -> None:
    script = tmp_path / "msg.sh"
    script.write_text(
        f"""#!/usr/bin/env bash
# the header, not shown
help_message="Usage: msg.sh [options] FILE"
n=2   # how many
. {UTILS}/parse_options.sh
"""
    )
    done = _bash(script, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: msg.sh [options] FILE\n")
    assert "the header" not in done.stdout
    assert "  --n [2]\n      how many\n" in done.stdout
    assert "--help-message" not in done.stdout
    refused = _bash(script, "--help-message", "x")
    assert refused.returncode == 1 and "unknown option --help-message" in refused.stderr


def _stage_script(tmp_path: Path) -> Path:
    script = tmp_path / "stages.sh"
    script.write_text(
        f"""#!/usr/bin/env bash
set -euo pipefail
. {UTILS}/stage.sh
stage=0
stop_stage=100
. {UTILS}/parse_options.sh
for n in 0 1 2 3 4 5 6; do
  if run_stage "$n"; then echo "stage $n"; fi
done
echo done
"""
    )
    return script


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        ([], [0, 1, 2, 3, 4, 5, 6]),
        (["--stage", "2"], [2, 3, 4, 5, 6]),
        (["--stop-stage", "0"], [0]),
        (["--stage", "2", "--stop-stage", "4"], [2, 3, 4]),
        (["--stage", "3", "--stop-stage", "3"], [3]),
        (["--stage", "5", "--stop-stage", "4"], []),
        (["--stage", "7"], []),
    ],
)
def test_run_stage_runs_the_stages_from_stage_to_stop_stage(
    tmp_path: Path, args: list[str], ran: list[int]
) -> None:
    done = _bash(_stage_script(tmp_path), *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"stage {n}" for n in ran] + ["done"]


def test_run_stage_refuses_a_stage_that_is_not_a_number(tmp_path: Path) -> None:
    # test(1) would only complain and skip every stage, and the script would end with 0
    done = _bash(_stage_script(tmp_path), "--stop-stage", "two")
    assert done.returncode == 1
    assert "--stop-stage" in done.stderr and "'two'" in done.stderr
    assert "done" not in done.stdout


def _train_script(tmp_path: Path) -> tuple[Path, str]:
    """A script calling asr_train NPROC, and a PATH whose asr and torchrun say how they ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("asr", "torchrun"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*"\n')
        (bin_dir / name).chmod(0o755)
    script = tmp_path / "train.sh"
    script.write_text(
        f"""#!/usr/bin/env bash
set -euo pipefail
. {UTILS}/asr_train.sh
asr_train "$1" --config "a b.yaml" --seed 0
"""
    )
    return script, os.pathsep.join([str(bin_dir), BARE_PATH])


@pytest.mark.parametrize(
    ("nproc", "command"),
    [
        ("0", "asr train"),
        ("1", "asr train"),
        ("2", "torchrun --standalone --nproc_per_node 2 -m asr train"),
        ("3", "torchrun --standalone --nproc_per_node 3 -m asr train"),
    ],
)
def test_asr_train_runs_torchrun_only_for_more_than_one_process(
    tmp_path: Path, nproc: str, command: str
) -> None:
    script, path = _train_script(tmp_path)
    done = _bash(script, nproc, path=path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{command} --config a b.yaml --seed 0\n"


def test_asr_train_refuses_an_nproc_that_is_not_a_number(tmp_path: Path) -> None:
    script, path = _train_script(tmp_path)
    done = _bash(script, "two", path=path)
    assert done.returncode != 0 and "--nproc" in done.stderr and done.stdout == ""


def _fake_checkout(tmp_path: Path, venv: bool, kenlm: bool) -> Path:
    """recipes/utils/path.sh and a recipe's path.sh in a checkout of their own."""
    root = tmp_path / "checkout"
    (root / "recipes" / "utils").mkdir(parents=True)
    (root / "recipes" / "demo").mkdir()
    shutil.copy(UTILS / "path.sh", root / "recipes" / "utils" / "path.sh")
    shutil.copy(RECIPES / "yesno" / "path.sh", root / "recipes" / "demo" / "path.sh")
    if venv:
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "bin" / "asr").write_text("#!/bin/sh\necho fake asr\n")
        (root / ".venv" / "bin" / "asr").chmod(0o755)
    if kenlm:
        (root / "tools" / "kenlm" / "bin").mkdir(parents=True)
    return root


def _path_after_sourcing(path_sh: Path, path: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        ["bash", "-c", f'set -euo pipefail; . "{path_sh}"; echo "$PATH"'],
        capture_output=True,
        text=True,
        env={"PATH": path},
        cwd=cwd,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(os.pathsep)


def test_path_sh_puts_the_checkouts_venv_and_kenlm_first(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path, venv=True, kenlm=True)
    venv, kenlm = str(root / ".venv" / "bin"), str(root / "tools" / "kenlm" / "bin")
    # sourced through a relative path from elsewhere: found from path.sh's own place
    path = _path_after_sourcing(Path("checkout/recipes/demo/path.sh"), BARE_PATH, tmp_path)
    assert path == [venv, kenlm, *BARE_PATH.split(os.pathsep)]
    # already on PATH: left where it is, not added twice
    given = os.pathsep.join(["/opt/x", venv, BARE_PATH])
    path = _path_after_sourcing(root / "recipes" / "demo" / "path.sh", given, root)
    assert path == [kenlm, "/opt/x", venv, *BARE_PATH.split(os.pathsep)]


def test_path_sh_leaves_out_folders_that_do_not_exist(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path, venv=False, kenlm=False)
    path = _path_after_sourcing(root / "recipes" / "demo" / "path.sh", BARE_PATH, root)
    assert path == BARE_PATH.split(os.pathsep)


# Every option each recipe script took before the shared parser, in the syntax it took them:
# flags alone, the digits switches with true/false, everything else with a value.
RECIPE_OPTIONS = {
    "yesno/run.sh": "corpus-dir stage stop-stage seed crops-per-utt precision threads "
    "feature-conf train-conf data exp",
    "digits/run.sh": "corpus-dir protocol folds stage stop-stage seed threads nproc "
    "trim-silence speed-perturb speed-factors noise noise-dir spec-augment precision average "
    "feature-conf train-conf data exp",
    "librispeech/run.sh": "corpus-dir download train-sets conf feature-conf unit bpe-size lm "
    "lm-order lm-weights word-scores beam-size beam-threshold stage stop-stage threads device "
    "nproc nj data exp",
    "synth/run.sh": "hours dev-utts test-utts stage stop-stage seed threads jobs beam-size text "
    "device nproc nj online order lm-weights word-scores vocal-tract vtlp augment phone-conf "
    "word-conf online-conf feature-conf data exp",
    "synth/compare_cells.sh": "data exp epochs parallel threads seed",
    "synth/compare_seeds.sh": "data exp seeds precisions parallel threads conf",
    "synth/ablate.sh": "data exp seed hours threads levers table",
    "synth_books/run.sh": "text-dir hours dev-utts test-utts stage stop-stage seed threads jobs "
    "order char-order beam-size-token beam-size beam-threshold lm-weights word-scores "
    "char-lm-weights vocal-tract vtlp augment device conf bpe-conf bpe-size feature-conf data exp",
    "timit/run.sh": "corpus-dir sample conf feature-conf stage stop-stage threads beam-size "
    "lm-weight insertion-bonus device synth-model data exp",
    "wsj/run.sh": "wsj0 wsj1 unit conf feature-conf audio lm-weights word-scores beam-size "
    "beam-threshold stage stop-stage threads device nproc nj data exp",
}
FLAGS = {"download", "sample", "online"}
TRUE_FALSE = {"trim-silence", "speed-perturb", "noise", "spec-augment"}


def test_the_option_table_covers_every_recipe_script() -> None:
    scripts = {str(p.relative_to(RECIPES)) for p in RECIPES.glob("*/*.sh")}
    scripts -= {str(p.relative_to(RECIPES)) for p in RECIPES.glob("*/path.sh")}
    scripts -= {str(p.relative_to(RECIPES)) for p in RECIPES.glob("*/cmd.sh")}
    scripts -= {str(p.relative_to(RECIPES)) for p in UTILS.glob("*.sh")}
    assert scripts == set(RECIPE_OPTIONS)


@pytest.mark.parametrize("recipe", ["librispeech", "wsj", "synth"])
def test_cmd_sh_names_launchers_the_asr_commands_accept(recipe: str) -> None:
    """cmd.sh is sourced by run.sh, and its train_cmd/decode_cmd are launcher specs."""
    assert ". ./cmd.sh" in (RECIPES / recipe / "run.sh").read_text().splitlines()
    done = subprocess.run(
        ["bash", "-c", '. ./cmd.sh; printf "%s\\n%s\\n" "$train_cmd" "$decode_cmd"'],
        capture_output=True,
        text=True,
        cwd=RECIPES / recipe,
        env={"PATH": BARE_PATH},
    )
    specs = done.stdout.splitlines()
    assert done.returncode == 0 and len(specs) == 2, done.stderr
    assert [Launcher.parse(spec).kind for spec in specs] == ["local", "local"]


@pytest.mark.parametrize("name", sorted(RECIPE_OPTIONS))
def test_recipe_sources_path_sh_and_its_help_lists_every_option(name: str) -> None:
    script = RECIPES / name
    lines = script.read_text().splitlines()
    # path.sh comes before any asr command, and it is the shared one
    assert ". ./path.sh" in lines
    assert not any(line.lstrip().startswith("asr ") for line in lines[: lines.index(". ./path.sh")])
    assert "../utils/path.sh" in (script.parent / "path.sh").read_text()

    options = RECIPE_OPTIONS[name].split()
    args: list[str] = []
    for option in options:  # all of them given before --help: the parser must accept each
        if option in FLAGS:
            args.append(f"--{option}")
        else:
            args += [f"--{option}", "false" if option in TRUE_FALSE else "1"]
    # from the repository root as recipes/NAME (not a path from the recipe's folder, where it
    # moves first), with no .venv on PATH
    done = _bash(script.relative_to(REPO_ROOT), *args, "--help", cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(script.read_text().splitlines()[1][2:])  # its header
    for option in options:
        assert f"\n  --{option} [" in done.stdout, option

    bad = _bash(script, "--no-such-option", "1")
    assert bad.returncode == 1
    assert "unknown option --no-such-option" in bad.stderr
    extra = _bash(script, "stray")
    assert extra.returncode == 1 and "unexpected argument stray" in extra.stderr


@pytest.mark.skipif(
    not (REPO_ROOT / ".venv" / "bin" / "asr").is_file(), reason="no .venv: run `make setup`"
)
@pytest.mark.parametrize("recipe", sorted({name.split("/")[0] for name in RECIPE_OPTIONS}))
def test_recipe_path_sh_finds_the_checkouts_asr(recipe: str) -> None:
    done = subprocess.run(
        ["bash", "-c", ". ./path.sh; command -v asr torchrun"],
        capture_output=True,
        text=True,
        env={"PATH": BARE_PATH},
        cwd=RECIPES / recipe,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    venv = REPO_ROOT / ".venv" / "bin"
    assert done.stdout.split() == [str(venv / "asr"), str(venv / "torchrun")]


@pytest.mark.skipif(
    not (REPO_ROOT / ".venv" / "bin" / "asr").is_file(), reason="no .venv: run `make setup`"
)
def test_a_recipe_runs_asr_with_no_venv_on_path(tmp_path: Path) -> None:
    # stage 0 of yes/no on a corpus that is not there: asr itself must say so
    script = RECIPES / "yesno" / "run.sh"
    args = ["--corpus-dir", str(tmp_path / "missing"), "--stop-stage", "0"]
    done = _bash(script, *args, "--data", str(tmp_path / "data"))
    assert done.stdout == "stage 0: data preparation (3 training set(s): seeds 0 100 200)\n"
    assert done.returncode == 1
    assert "command not found" not in done.stderr
    assert "yes/no corpus directory not found" in done.stderr
