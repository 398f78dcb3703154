"""What every chapter does first: resolve the profile, say what its numbers are worth, load
MTFL-80's splits and the mean-shape yardstick.

    from lmcore.chapter import setup_chapter
    chapter = setup_chapter(profile)        # displays the profile note
    chapter.test_mtfl, chapter.mean_shape   # a LandmarkSet, the mean shape's error on test_mtfl
"""
from __future__ import annotations

from dataclasses import dataclass

from .data import LandmarkSet
from .data.sources import get_source
from .evaluation import mean_shape_error
from .profiles import resolve_profile


@dataclass
class Chapter:
    profile: str
    data: object  # the MTFL-80 source (lmcore.data.MTFL80)
    test_mtfl: LandmarkSet
    test_aflw: LandmarkSet
    regressor_train: LandmarkSet
    mean_shape: float  # the mean shape's forward error on test_mtfl, % of IOD
    mean_shape_aflw: float

    @property
    def target(self) -> float:
        """Half the mean shape's error on test_mtfl: the book's bar for a K = 10 reference."""
        return self.mean_shape / 2


def setup_chapter(profile: str | None = None, show: bool = True) -> Chapter:
    """Resolve ``profile`` (None: ``$LMBOOK_PROFILE``, else by hardware), display its note (in a
    notebook) and load what every chapter reads."""
    profile = resolve_profile(profile)
    if show:
        from IPython.display import Markdown, display

        from .viz import profile_note

        display(Markdown(profile_note(profile)))
    data = get_source("mtfl80")
    test_mtfl, test_aflw = data.split("test_mtfl"), data.split("test_aflw")
    regressor_train = data.split("regressor_train")
    return Chapter(profile, data, test_mtfl, test_aflw, regressor_train,
                   mean_shape_error(regressor_train.points, test_mtfl.points)["mean"],
                   mean_shape_error(regressor_train.points, test_aflw.points)["mean"])
