"""The convergence campaign (issue 45): each paper's K = 10 headline grown continuation after
continuation until its tune_val curve flattens, one training at a time, in this order of priority
(``tools/campaign.py`` trains the next continuation of the first lineage not done).

Caps are hours of training on the two-core machine; a curve still falling at its cap is reported
with its pace. Zhang is grown in both loss balances: the book's (the headline, chosen on tune_val
at 1,000 steps) and the released code's, from scratch at the headline's budget: whether the
balance that produced the published numbers wins given enough steps is the chapter's finding.
"""
from __future__ import annotations

from .base import Lineage
from .zhang import CODE_BALANCE

LINEAGES: tuple[Lineage, ...] = (
    Lineage("zhang", "k10-grown", "zhang/k10", cap_hours=4.0, label="Zhang K = 10, the book's balance"),
    Lineage("zhang", "k10-code-balance", None, cap_hours=4.0, label="Zhang K = 10, the released code's balance",
            overrides={"method": CODE_BALANCE},
            # the headline zhang/k10's own schedule (its record's overrides of the profile), in the code's balance
            seed={"method": {**CODE_BALANCE, "recon_increase_steps": [700, 1400], "landmark_control_after": 500},
                  "train": {"steps": 2000, "lr_milestones": [1400]}}),
    Lineage("jakab", "k10-grown", "jakab/k10", cap_hours=4.0, label="Jakab K = 10", priority=3),
    Lineage("fse", "k10-grown", "fse/k10", cap_hours=4.0, label="FSE K = 10", priority=4),
)
