"""Method registry and the families shared by several papers: FullModel and the self-paced
family (Kumar's SPL, SPL_INV, SPLD), with their helpers (common.py). MentorNet's Self-paced
baseline lives with its other baselines (papers/mentornet/baselines.py).
A paper's own methods live in its package (papers/<paper>/) and register the same way.

params.yaml names method *instances* (e.g. `lgl_r4: {family: lgl, strategy: r, steps: 4}`);
the family selects the class registered here, the other keys are its hyper-parameters.
"""
from . import common, fullmodel, spl  # noqa: F401  (each registers its families)
from .base import METHODS, Method, TrainerView, register

__all__ = ["METHODS", "Method", "TrainerView", "register"]
