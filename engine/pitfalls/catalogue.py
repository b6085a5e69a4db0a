"""The catalogue of pitfall codes: what each means and how to fix it."""

from __future__ import annotations

from typing import NamedTuple


class Explanation(NamedTuple):
    meaning: str
    """What the warning means, in general terms."""
    fix: str
    """How to fix it."""


EXPLANATIONS: dict[str, Explanation] = {
    "grad-accumulated": Explanation(
        "backward added its gradient to a .grad that already held one since the last "
        "zero_grad: PyTorch sums gradients, so the next step uses their sum",
        "call optimizer.zero_grad() once per iteration, before backward (unless you "
        "accumulate gradients on purpose)",
    ),
    "step-without-grad": Explanation(
        "step ran while no optimizer parameter had a gradient: nothing moved",
        "run backward before step: forward, backward, step, zero_grad",
    ),
    "stale-grad": Explanation(
        "step ran again with the gradients a previous step already used (no backward "
        "since): the parameters moved twice along the same old gradient",
        "run forward and backward before each step",
    ),
    "backward-twice": Explanation(
        "backward went through a graph that an earlier backward already freed; PyTorch refuses it",
        "run forward again before each backward (or pass retain_graph=True to the first "
        "backward when backpropagating twice on purpose)",
    ),
    "stale-graph": Explanation(
        "backward ran on a loss computed before the parameters last changed: its gradient "
        "belongs to the old values (PyTorch raises only when a saved tensor changed)",
        "run forward again after each step, then backward",
    ),
    "param-not-in-graph": Explanation(
        "after backward an optimizer parameter still has no gradient: the loss does not "
        "depend on it, so step never moves it",
        "use the parameter in forward, or remove it from the optimizer",
    ),
    "param-not-in-optimizer": Explanation(
        "a tensor of the scenario that requires grad received a gradient, but the "
        "optimizer does not hold it: it never moves",
        "add it to the optimizer's parameters, or create it with requires_grad=False",
    ),
    "frozen-param": Explanation(
        "an optimizer parameter has requires_grad=False: it never gets a gradient and never moves",
        "create it with requires_grad=True (or call .requires_grad_()), or leave it out of "
        "the optimizer if it is meant to stay fixed",
    ),
    "loss-not-scalar": Explanation(
        "forward returned a loss with more than one element; backward() needs one number",
        "reduce the loss in forward with .sum() or .mean()",
    ),
    "loss-no-grad": Explanation(
        "the loss has no grad_fn: it is not connected to any tensor that requires grad, so "
        "backward will fail",
        "compute the loss from the parameters with autograd on: no torch.no_grad(), no "
        ".detach() or .item() on the way, parameters created with requires_grad=True",
    ),
    "diverging": Explanation(
        "the loss rises instead of falling: the learning rate is likely too large",
        "lower the learning rate (e.g. by 10x), or clip gradients",
    ),
    "non-finite": Explanation(
        "NaN or Inf appeared in the loss, a gradient or a parameter; everything computed "
        "from it is NaN or Inf too",
        "lower the learning rate; guard log/sqrt/division against zero or negative inputs",
    ),
    "exploding-grad": Explanation(
        "a gradient norm jumped far above its recent scale",
        "lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), or "
        "normalize the inputs",
    ),
    "vanishing-grad": Explanation(
        "a gradient norm fell far below its recent scale: that parameter almost stopped learning",
        "check for saturating activations (sigmoid, tanh) or dead ReLUs, the scale of the "
        "inputs and of the loss; normalization layers or residual connections help",
    ),
    "plateau": Explanation(
        "the loss stopped changing relative to its size although the gradient has not "
        "vanished: the steps are too small to make progress",
        "raise the learning rate (or stop decaying it), or use an adaptive optimizer such "
        "as Adam; silence `plateau` in optdbg_config if this is as good as it gets",
    ),
    "scheduler-order": Explanation(
        "the learning-rate scheduler stepped before the optimizer ever did: PyTorch skips "
        "the first value of the schedule",
        "call scheduler.step() after optimizer.step(), never before the first one",
    ),
    "eval-mode-training": Explanation(
        "a Dropout or normalization module was in eval mode during a forward that trains: "
        "dropout is off and batch norm uses its running statistics instead of the batch's",
        "call model.train() after each evaluation, before the training forward",
    ),
    "softmax-before-ce": Explanation(
        "CrossEntropyLoss (or NLLLoss) received probabilities instead of what it expects: "
        "cross_entropy applies log_softmax itself and wants raw logits; nll_loss wants "
        "log-probabilities",
        "pass the raw logits to CrossEntropyLoss (drop the softmax), or use log_softmax "
        "with NLLLoss",
    ),
    "loss-broadcast": Explanation(
        "the loss's input and target have different shapes and broadcast (e.g. (N, 1) "
        "against (N,) gives N x N differences): the loss compares every prediction with "
        "every target",
        "give input and target the same shape: output.squeeze(1), or target.unsqueeze(1)",
    ),
    "init-loss-mismatch": Explanation(
        "the first classification loss is far above ln(C), the loss of a uniform "
        "prediction over C classes: the initial logits are large (bad init, unnormalized "
        "inputs) or the labels do not match the outputs",
        "normalize the inputs, initialize the last layer small (or its bias to the class "
        "prior), check that the labels are class indices matching the outputs",
    ),
    "loss-at-chance": Explanation(
        "the classification loss stays at ln(C), the loss of a uniform guess: the model "
        "learns nothing from the labels",
        "check that labels and inputs are paired (no separate shuffles), that the gradient "
        "reaches the model, and the learning rate",
    ),
    "clip-order": Explanation(
        "gradient clipping ran where it cannot matter (after step, or before backward), or "
        "binds on most steps (then max_norm acts as a smaller learning rate)",
        "clip between backward and step: loss.backward(); clip_grad_norm_(...); "
        "optimizer.step(); raise max_norm if it binds on nearly every step",
    ),
    "update-ratio": Explanation(
        "the size of a weight's update relative to the weight (|lr x update| / |param|) "
        "stays far from ~1e-3 for many steps: the learning rate is too high (above) or too "
        "low (below) for that layer",
        "lower or raise the learning rate (per parameter group if only some layers are off)",
    ),
    "dead-relu": Explanation(
        "nearly every unit of a ReLU layer outputs zero for every input of the batch: no "
        "gradient flows through those units, so the layers before them stop learning",
        "lower the learning rate, initialize biases at zero or small positive values "
        "(Kaiming init), normalize the inputs, or use LeakyReLU",
    ),
    "decay-on-bias-norm": Explanation(
        "notice: weight decay applies to biases and normalization weights (1-d parameters), "
        "which usually should not be decayed",
        "put 1-d parameters in a param group with weight_decay=0 (e.g. [{'params': "
        "weights}, {'params': biases, 'weight_decay': 0}])",
    ),
    "loss-history-retained": Explanation(
        "a loss is kept across iterations with its graph (total += loss, losses.append(loss)): "
        "every iteration's graph stays in memory, which grows without bound",
        "keep the number, not the tensor: total += loss.item() (or loss.detach())",
    ),
    "param-replaced": Explanation(
        "a parameter was rebound to a new tensor (w = w - lr * w.grad): the name now holds a "
        "non-leaf result, while the optimizer (or the update) still holds the old tensor",
        "update in place under torch.no_grad(): with torch.no_grad(): w -= lr * w.grad",
    ),
    "inplace-saved-tensor": Explanation(
        "an in-place op changed a tensor that autograd saved for backward, so PyTorch "
        "refused the backward (its version counter moved)",
        "make that op out of place (x = x + 1 instead of x += 1, relu instead of relu_, "
        "inplace=False), or clone the tensor before modifying it",
    ),
    "optimizer-recreated": Explanation(
        "a new optimizer (or a reset of its state) at every iteration: Adam's moments, "
        "momentum buffers and step counts start over each time",
        "create the optimizer once, before the loop",
    ),
    "lr-schedule-odd": Explanation(
        "the learning-rate schedule sent the learning rate to about zero long before the "
        "end, or far above where it started: training stalls, or diverges",
        "check the schedule's arguments (gamma, step_size, T_max, total_steps) against the "
        "number of steps you train for",
    ),
    "overfitting": Explanation(
        "the evaluation loss rose at several evaluations in a row while the training loss "
        "kept falling: the model is fitting the training data's noise, not the pattern",
        "stop training at the best evaluation (early stopping), or regularize: more data, "
        "a smaller model, weight decay or dropout",
    ),
    "replay-diverged": Explanation(
        "undo/redo rebuilt a state by replaying ops from a checkpoint and got different "
        "numbers than the first time: the scenario is not deterministic (unseeded randomness "
        "outside torch, random and numpy, or state kept outside the parameters)",
        "draw random numbers from torch, random or numpy (optdbg restores their state), or "
        "from a generator stored in the scenario; keep mutable state in tensors",
    ),
    "ddp-grads-differ": Explanation(
        "under DistributedDataParallel, the gradients a step used are not the same on every "
        "rank, although the all-reduce in backward made them equal: something changed them on "
        "one rank afterwards (or a backward under no_sync() reached the step), so the "
        "replicas drift apart",
        "change gradients the same way on every rank (clip, scale), and step only after a "
        "synchronized backward (leave no_sync() for the backwards before the last one)",
    ),
    "ddp-step-skipped": Explanation(
        "under DistributedDataParallel, one rank did not step after a synchronized backward "
        "while the others did: its parameters fall behind and the replicas differ from then on",
        "call optimizer.step() on every rank after every synchronized backward (skip a step, "
        "e.g. for a non-finite loss, on all ranks together)",
    ),
}
"""Every pitfall code, in catalogue order: what it means and how to fix it."""

CODES: tuple[str, ...] = tuple(EXPLANATIONS)

ONCE_CODES = frozenset(
    {
        "non-finite",
        "diverging",
        "plateau",
        "exploding-grad",
        "vanishing-grad",
        "param-not-in-graph",
        "param-not-in-optimizer",
        "frozen-param",
        "scheduler-order",
        "eval-mode-training",
        "softmax-before-ce",
        "loss-broadcast",
        "loss-at-chance",
        "clip-order",
        "update-ratio",
        "dead-relu",
        "decay-on-bias-norm",
        "loss-history-retained",
        "param-replaced",
        "optimizer-recreated",
        "lr-schedule-odd",
        "overfitting",
    }
)
"""Codes for conditions: reported when they appear, not on every op while they last."""


class Trigger(NamedTuple):
    when: str
    """When the code fires, in one line."""
    thresholds: tuple[str, ...] = ()
    """The `Thresholds` fields that tune it (configurable in optdbg_config)."""


TRIGGERS: dict[str, Trigger] = {
    "grad-accumulated": Trigger(
        "backward into a `.grad` already holding a gradient since the last zero_grad"
    ),
    "step-without-grad": Trigger("step while no optimizer parameter has a gradient"),
    "stale-grad": Trigger("step again with gradients a previous step already used"),
    "backward-twice": Trigger("backward through a freed graph (PyTorch's error, explained)"),
    "stale-graph": Trigger("backward on a loss computed before the parameters last changed"),
    "param-not-in-graph": Trigger("after backward, an optimizer parameter has no gradient"),
    "param-not-in-optimizer": Trigger(
        "a tensor requiring grad received a gradient the optimizer does not hold"
    ),
    "frozen-param": Trigger("an optimizer parameter has requires_grad=False"),
    "loss-not-scalar": Trigger("forward returned a loss of several elements"),
    "loss-no-grad": Trigger("forward returned a loss without grad_fn"),
    "diverging": Trigger(
        "the loss rose over consecutive points of the loss series, or far above its best",
        ("diverge_rises", "diverge_min_rise", "diverge_factor"),
    ),
    "non-finite": Trigger("NaN or Inf in the loss, a gradient or a parameter"),
    "exploding-grad": Trigger(
        "a gradient norm jumps far above its recent median while the loss rises well above its "
        "best, and lr x its norm is a good part of the parameters' norm",
        ("explode_factor", "explode_loss_rise", "explode_rel", "grad_window", "grad_warmup"),
    ),
    "vanishing-grad": Trigger(
        "a gradient norm falls far below its recent median while the loss has made little progress",
        ("vanish_factor", "vanish_progress", "grad_window", "grad_warmup"),
    ),
    "plateau": Trigger(
        "the loss stopped changing relative to its size while the gradient has not vanished",
        ("plateau_patience", "plateau_rtol", "plateau_grad_ratio"),
    ),
    "scheduler-order": Trigger("the scheduler stepped before the optimizer ever did"),
    "eval-mode-training": Trigger(
        "forward with a loss that requires grad while a Dropout/BatchNorm/InstanceNorm "
        "module is in eval mode"
    ),
    "softmax-before-ce": Trigger(
        "the loss's graph has Softmax/LogSoftmax feeding CrossEntropyLoss, or Softmax "
        "feeding NLLLoss"
    ),
    "loss-broadcast": Trigger(
        "MSE/L1/SmoothL1/Huber loss whose input was broadcast to the target's shape"
    ),
    "init-loss-mismatch": Trigger(
        "the first forward's CrossEntropy/NLL loss exceeds ln(C) (per sample) by a factor",
        ("init_loss_factor",),
    ),
    "loss-at-chance": Trigger(
        "the CrossEntropy/NLL loss stays within a tolerance of ln(C) for many forwards "
        "without falling",
        ("chance_patience", "chance_rtol", "chance_progress"),
    ),
    "clip-order": Trigger(
        "gradients modified in place after step or before backward; or clipping that "
        "shrank the gradient on most recent steps",
        ("clip_window", "clip_binding"),
    ),
    "update-ratio": Trigger(
        "a weight's (2-d and up) |update| / |weight| above or below bounds for consecutive "
        "steps (below only while the gradient has not vanished)",
        ("update_ratio_high", "update_ratio_low", "update_ratio_patience"),
    ),
    "dead-relu": Trigger(
        "an nn.ReLU layer outputs zero for every input of the batch on most of its units",
        ("dead_relu_fraction",),
    ),
    "decay-on-bias-norm": Trigger(
        "notice at load: a param group with weight_decay > 0 holds 1-d parameters "
        "(biases, norm weights)"
    ),
    "loss-history-retained": Trigger(
        "a global of the scenario keeps loss tensors with their graphs of two forwards or more"
    ),
    "param-replaced": Trigger(
        "a parameter's global name is rebound to another tensor (w = w - lr * w.grad)"
    ),
    "inplace-saved-tensor": Trigger(
        "backward refused because an in-place op modified a saved tensor; names the op's line"
    ),
    "optimizer-recreated": Trigger(
        "an optimizer with empty state steps parameters that a stateful optimizer already "
        "stepped (a new optimizer, or its state reset)"
    ),
    "lr-schedule-odd": Trigger(
        "the lr stayed near zero for many steps, a good part of the run; or rose far above "
        "its start",
        ("lr_zero_ratio", "lr_zero_patience", "lr_zero_share", "lr_rise_factor"),
    ),
    "overfitting": Trigger(
        "the evaluation loss rose at several evaluations in a row while the training loss fell",
        ("overfit_rises",),
    ),
    "replay-diverged": Trigger(
        "undo/redo replayed ops (or `r` in trace fast-forwarded a script) and got different "
        "numbers than the first time"
    ),
    "ddp-grads-differ": Trigger(
        "trace under DDP: a step's gradients differ between ranks (compared through the "
        "process group's store after every rank passed the next backward)",
        ("ddp_grad_rtol",),
    ),
    "ddp-step-skipped": Trigger(
        "trace under DDP: after a synchronized backward some ranks stepped an optimizer "
        "and this or another rank did not"
    ),
}
"""When each code fires and the thresholds that tune it (the README's table comes from it)."""
