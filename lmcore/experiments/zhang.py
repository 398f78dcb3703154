"""Chapter 2, Zhang et al. 2018: K = 10 and K = 30 (the profile's K = 30 settings, budget variant
``k30``), few-shot sizes of its Fig. 6."""
from .base import BookRun, Experiment

EXPERIMENT = Experiment("02_zhang", (
    BookRun("Zhang", "zhang", "k10", 10, chapter="02_zhang"),
    BookRun("Zhang", "zhang", "k30", 30, variant="k30", chapter="02_zhang"),
), few_shot={"sizes": [1, 5, 10, 50, 100, 500, 1000, None], "repeats": 10})
