"""Pitfall detectors: every classic optimization-loop mistake named, located and explained.

Each detector is a pure function over a read-only `Context` built after every op (through
`Detectors.after`) from the `LoopState` the op left, whichever driver performed it (the
Session or the tracer). It yields a `Finding` (stable code, message with the
actual numbers, parameter name) for a mistake it sees at this op, or a `Clear` when it
checked a condition and found it no longer holds.

Two kinds of codes:

- *per op* (`grad-accumulated`, `step-without-grad`, `stale-grad`, `backward-twice`,
  `stale-graph`, `loss-not-scalar`, `loss-no-grad`, `init-loss-mismatch`,
  `inplace-saved-tensor`): the op itself is the mistake, so every op that makes it is warned;
- *conditions* (every other code, `ONCE_CODES`): reported once, on the op where the condition
  first appears, and again only after a `Clear` said it went away (per parameter, layer or
  name where it names one).

Layout: `catalogue` (codes, meaning, fix, when each fires), `thresholds` (defaults and
their meaning), `context` (the facts a rule receives), one module of rules per theme
(`order`, `loss`, `gradients`, `params`, `lossfn`, `modules`, `updates`, `optim`,
`memory`), `probes` and `lossgraph` (gathering the second catalogue's facts), `runner`
(`Detectors`: builds the facts, runs the rules in `CATALOGUE` order, remembers windows),
`diagnose`, `measure`, `table` (the README's table).

Thresholds (`Thresholds`, all configurable per scenario with
`optdbg_config = {"plateau_patience": 100, "silence": ["plateau"]}`): each one's meaning is in
`thresholds.HELP`, each code's trigger and thresholds in `catalogue.TRIGGERS`; the README's
pitfall table is generated from them (`table.markdown()`, checked by a test).

With these defaults, plain correct loops (`i` repeated) on every built-in scenario stay
silent for 200 iterations (2000 for polynomial_sin), except where the loss really blows
up: quadratic_bowl_lr10 diverges by design (diverging at its 2nd forward, exploding-grad,
then non-finite), log_xy's loss has no minimum and turns NaN at its 53rd forward, and
lr_schedule's decayed learning rate reaches about zero (lr-schedule-odd after 85
iterations) and stalls the loss short of the minimum (plateau after about 140), rightly.
The corpus of tests/corpus/correct (public tutorials and examples) stays silent too.

Cost: per op, a Python pass over the optimizer's parameter list (attribute reads); one
norm per parameter that received a gradient at backward and one per parameter a step
changed (computed in float64 on the torch side: finite exactly when every element is);
the probes' costs are listed in `probes`. Messages are formatted only when a finding fires.
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
