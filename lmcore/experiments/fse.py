"""Chapter 1, Thewlis et al. 2017: K = 10 and K = 30, few-shot sizes of its Table 4 (n = 20 added)."""
from .base import BookRun, Experiment, num_landmarks

EXPERIMENT = Experiment("01_fse", (
    BookRun("FSE", "fse", "k10", 10, num_landmarks(10), chapter="01_fse"),
    BookRun("FSE", "fse", "k30", 30, num_landmarks(30), chapter="01_fse"),
), few_shot={"sizes": [1, 5, 10, 20, 100, 1000, None], "repeats": 10})
