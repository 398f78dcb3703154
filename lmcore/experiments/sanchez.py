"""Chapter 4, Sanchez & Tzimiropoulos 2019: Table 1's three modes at K = 10 (each mode's first
seed; the other seeds are the budget's ``seeds`` variant), the face chapters' few-shot sizes."""
from .base import FACE_FEW_SHOT, BookRun, Experiment

EXPERIMENT = Experiment("04_sanchez", tuple(
    BookRun(label, "sanchez", mode, 10, {"method": {"mode": mode}}, chapter="04_sanchez")
    for label, mode in (("Sanchez (proposed)", "proposed"), ("Sanchez (fine-tune)", "finetune"),
                        ("Sanchez (scratch)", "scratch"))
), few_shot=FACE_FEW_SHOT)
