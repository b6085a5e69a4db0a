"""Pitfall detectors: every classic optimization-loop mistake named, located and explained.

Each detector is a pure function over a read-only `Context` built after every op (through
`Detectors.after`) from the `LoopState` the op left, whichever driver performed it (the
Session or the tracer). It yields a `Finding` (stable code, message with the
actual numbers, parameter name) for a mistake it sees at this op, or a `Clear` when it
checked a condition and found it no longer holds.

Two kinds of codes:

- *per op* (`grad-accumulated`, `step-without-grad`, `stale-grad`, `backward-twice`,
  `stale-graph`, `loss-not-scalar`, `loss-no-grad`): the op itself is the mistake, so
  every op that makes it is warned;
- *conditions* (`non-finite`, `diverging`, `plateau`, `exploding-grad`, `vanishing-grad`,
  `param-not-in-graph`, `param-not-in-optimizer`, `frozen-param`, `scheduler-order`):
  reported once, on the op where the condition first appears, and again only after a
  `Clear` said it went away (per parameter where it names one).

Thresholds (`Thresholds`, all configurable per scenario with
`optdbg_config = {"plateau_patience": 100, "silence": ["plateau"]}`):

=====================  =======  ==========================================================
name                   default  meaning
=====================  =======  ==========================================================
diverge_rises          5        `diverging` when the loss rose on this many consecutive
                                points of the loss series (forwards when every forward
                                sees the same data; epoch means for mini-batches) ...
diverge_min_rise       0.5      ... and the total rise is at least this fraction of the
                                loss where the rises began
diverge_factor         10       `diverging` also when a loss exceeds its best by this many
                                times max(|first|, |best|, first - best)
plateau_patience       50       `plateau` compares the loss series now with this many
                                points ago ...
plateau_rtol           1e-4     ... and fires when it moved by less than this fraction of
                                its size ...
plateau_grad_ratio     1e-3     ... while the gradient norm is still at least this fraction
                                of the largest seen (a vanished gradient means converged)
grad_window            10       exploding/vanishing compare a gradient norm with the
                                median of this many recent norms of the same parameter ...
grad_warmup            5        ... once at least this many are known
explode_factor         100      `exploding-grad`: norm above factor x median
vanish_factor          1000     `vanishing-grad`: norm below median / factor (exact zeros
                                are not counted: a zero gradient is a converged one)
silence                ()       codes never reported for this scenario
=====================  =======  ==========================================================

With these defaults, plain correct loops (`i` repeated) on every built-in scenario stay
silent for 200 iterations (2000 for polynomial_sin), except where the loss really blows
up: quadratic_bowl_lr10 diverges by design (diverging at its 2nd forward, exploding-grad,
then non-finite), log_xy's loss has no minimum and turns NaN at its 53rd forward, and
lr_schedule's decayed learning rate stalls the loss short of the minimum (plateau after
about 125 iterations, rightly).

Cost: per op, a Python pass over the optimizer's parameter list (attribute reads); one
norm per parameter that received a gradient at backward and one per parameter a step
changed (computed in float64 on the torch side: finite exactly when every element is);
nothing else touches tensor elements. Messages are formatted only when a finding fires.
"""

from __future__ import annotations

from .catalogue import CODES, EXPLANATIONS, ONCE_CODES, Explanation
from .context import Clear, Context, Detector, Extra, ParamInfo
from .diagnose import Diagnosis, diagnose
from .measure import measure
from .runner import ANY_OP, CATALOGUE, Detectors
from .thresholds import Thresholds

__all__ = [
    "ANY_OP",
    "CATALOGUE",
    "CODES",
    "EXPLANATIONS",
    "ONCE_CODES",
    "Clear",
    "Context",
    "Detector",
    "Detectors",
    "Diagnosis",
    "Explanation",
    "Extra",
    "ParamInfo",
    "Thresholds",
    "diagnose",
    "measure",
]
