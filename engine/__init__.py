"""optdbg's UI-free core: scenario loading, the stepping Session, events, snapshots, graphs."""

from .errors import ScenarioError
from .events import OPS, WORDS, Event, Finding, OpError
from .scenario import Scenario, builtin_names, load
from .session import Session, UpdateDetail
from .snapshot import ParamSnapshot, Snapshot, TensorView

__all__ = [
    "OPS",
    "WORDS",
    "Event",
    "Finding",
    "OpError",
    "ParamSnapshot",
    "Scenario",
    "ScenarioError",
    "Session",
    "Snapshot",
    "TensorView",
    "UpdateDetail",
    "builtin_names",
    "load",
]
