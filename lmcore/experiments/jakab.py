"""Chapter 3, Jakab et al. 2018: K = 10 and K = 30, the face chapters' few-shot sizes (C3's
chapter evaluates the same runs as its baselines)."""
from .base import FACE_FEW_SHOT, BookRun, Experiment, num_landmarks

EXPERIMENT = Experiment("03_jakab", (
    BookRun("Jakab", "jakab", "k10", 10, num_landmarks(10), chapter="03_jakab"),
    BookRun("Jakab", "jakab", "k30", 30, num_landmarks(30), chapter="03_jakab"),
), few_shot=FACE_FEW_SHOT)
