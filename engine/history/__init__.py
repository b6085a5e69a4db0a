"""Time travel for a driver (the Session): undo, redo and goto, by checkpoints plus
deterministic replay.

Every op is logged (its Event, and the arguments of a hyperparameter edit). A checkpoint is
a detached copy of everything an op can change: the values and grads of the optimizer's
parameters and of every other leaf tensor that requires grad, module buffers, optimizer and
scheduler state, the param groups' hyperparameters, the random number generators (torch
CPU and CUDA, Python `random`, NumPy's global state, and every generator the scenario or its
DataLoader holds), the data position, scalar globals and plain containers of the scenario,
the driver's own state (counters, accumulation bookkeeping, last step records: whatever its
`checkpoint()` returns, see `engine.loop.Checkpointable`) and the state of the observers
given (`history_state()` / `restore_history_state(state)`: the pitfall detectors).

A graph cannot be copied, so checkpoints never hold one. They are taken right *before a
forward* (or at the start, where there is no loss): the state after op k is rebuilt by
restoring a checkpoint taken at or before the last forward up to k and replaying the logged
ops from there through the driver's own ops (`perform_op`). Replay performs the same PyTorch calls
on the same values, batches and random streams, so it reproduces every value bit for bit,
the loss and its graph included (each replayed event is compared with the logged one, and a
difference is reported as a `replay-diverged` warning).

The data position is not copied either: a checkpoint keeps the random state at the moment
the current epoch's iterator was created and the number of batches drawn from it; restoring
creates a new iterator from that state and skips that many batches.

Memory: checkpoints share every tensor they can (step records, unchanged buffers and frozen
tensors, identical random states) and live within a byte budget (`history_mb`, default
256 MB, from the History argument or the scenario's `optdbg_config`). When a new checkpoint
passes the budget, the one whose removal costs least is evicted: the gap it leaves, measured
in ops, relative to the square root of its distance from the current position, so that
checkpoints stay dense near where the user is and thin out towards the start. The start
checkpoint is never evicted, so undo always reaches the start. A checkpoint is taken before
a forward only when the work done since the previous one is at least ten times what the last
checkpoint cost to take (about 10% overhead at most), or every `every` forwards if set.
"""

from .rng import RngState, find_generators
from .travel import DEFAULT_HISTORY_MB, History, HistoryError, TimelineEntry

__all__ = [
    "DEFAULT_HISTORY_MB",
    "History",
    "HistoryError",
    "RngState",
    "TimelineEntry",
    "find_generators",
]
