"""Chapter 5, Xu et al. 2020 (C3): K = 10 and K = 30 (the profile's K = 30 settings, budget
variant ``k30``), the face chapters' few-shot sizes."""
from .base import FACE_FEW_SHOT, BookRun, Experiment

EXPERIMENT = Experiment("05_c3", (
    BookRun("C3", "c3", "k10", 10, chapter="05_c3"),
    BookRun("C3", "c3", "k30", 30, variant="k30", chapter="05_c3"),
), few_shot=FACE_FEW_SHOT)
