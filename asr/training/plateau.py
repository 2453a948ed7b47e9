"""The CTC plateau: telling a run that is stuck emitting blanks from one that is still learning.

Early in CTC training a network learns that "blank everywhere" is the cheapest output: the dev
hypotheses are empty (or nearly so) and the dev token error rate sits at or near 100%. Most runs
leave this plateau when the first spikes appear; some never do (the yes/no recipe's seeds 2-4
before this module, the forward-only tanh RNN of the synth recipe's ``compare_cells.sh``, 93%
TER after 12 epochs, nearly all deletions). Measured on yes/no (recipes/yesno/RESULTS), runs on
whole recordings that did escape spent up to 13 epochs at 100%; the default patience (8 epochs at
90% or more, in asr.training.trainer) restarts such a slow run early, which costs a fresh draw
and seconds on the small tasks where this happens, while large tasks leave the plateau in their
first epochs and never meet the rule. A task with few tokens can tighten it (the yes/no recipe:
10 epochs at 10% or more), since there a run stuck at 45-87% TER emits a few words and deletes
the rest.

The rule, kept apart from the loop so it can be tested on histories alone: an epoch is on the
plateau when its dev TER is at least ``ter`` percent or its dev hypotheses hold fewer than
``min_output`` tokens per reference token (the forward-only tanh RNN of ``compare_cells.sh``
sat at 87-89% TER in fp32 with three quarters of the test phones deleted, under a TER rule of
90%); a run is stuck when every one of the last ``patience`` epochs since its last (re)start
was on it. The trainer then draws new weights from :func:`restart_seed` and starts its
optimizer over (``asr.training.trainer``); after ``restarts`` restarts it stops and says it is
stuck.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def on_plateau(record: Mapping[str, float], ter: float, min_output: float) -> bool:
    """One epoch on the plateau: dev TER at ``ter`` % or more, or fewer than ``min_output``
    dev hypothesis tokens per reference token (a history without ``dev_output`` predates it)."""
    return record["dev_ter"] >= ter or record.get("dev_output", math.inf) < min_output


def epochs_on_plateau(
    history: Sequence[Mapping[str, float]], since_epoch: int, ter: float, min_output: float = 0.0
) -> int:
    """How many of the epochs after ``since_epoch`` were on the plateau, counted from the newest
    back to the first one that was not."""
    count = 0
    for record in reversed(history):
        if record["epoch"] <= since_epoch or not on_plateau(record, ter, min_output):
            break
        count += 1
    return count


def is_stuck(
    history: Sequence[Mapping[str, float]],
    since_epoch: int,
    patience: int,
    ter: float,
    min_output: float = 0.0,
) -> bool:
    """True when ``patience`` (> 0) epochs since ``since_epoch`` were all on the plateau and none
    of them was off it (a run that left it once has learnt something, even if it later falls
    back: that is divergence, which the lr schedule handles)."""
    if patience <= 0:
        return False
    since = [h for h in history if h["epoch"] > since_epoch]
    return len(since) >= patience and all(on_plateau(h, ter, min_output) for h in since)


def restart_seed(seed: int, restart: int) -> int:
    """The seed of the weights of restart number ``restart`` (1, 2, ...) of a run seeded
    ``seed``: a function of both, so a resumed run restarts exactly as an uninterrupted one."""
    return (seed + 7_919 * restart) % (2**63)
