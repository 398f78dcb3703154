"""Chapter 0: the supervised yardstick, a detector trained with MTFL-80's labels."""
from .base import BookRun, Experiment

EXPERIMENT = Experiment("00_data_and_protocol", (
    BookRun("supervised (direct)", "supervised", "reference", None, chapter="00_data_and_protocol"),
))
