"""Runs are keyed by what their code computes (issue 42): a comment never retrains, a real change
always does, and only the runs whose code it is."""
import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from lmcore.methods import REGISTRY
from lmcore.paths import PROJECT_ROOT, RESULTS_DIR
from lmcore.training import code_identity
from lmcore.training.code_identity import (closure, code_fingerprint, evaluation_manifest, fingerprint, normalised,
                                           training_manifest, training_roots, working_tree)

SOURCES = ("mtfl80", "lspet128")


def _copy_lmcore(tmp_path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(PROJECT_ROOT / "lmcore", root / "lmcore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def _fingerprints(root: Path) -> dict:
    """Every method's training and evaluation fingerprints on every source, from the code under ``root``."""
    tree = working_tree(root)
    return {(m, s, kind): fingerprint(manifest(m, s, tree)) for m in REGISTRY for s in SOURCES
            for kind, manifest in (("training", training_manifest), ("evaluation", evaluation_manifest))}


def _committed_methods() -> dict[str, str]:
    """``{record path: method}`` of every committed run record."""
    out = {}
    for path in sorted(RESULTS_DIR.glob("**/*.json")):
        if path.parent.name in ("bench", "builds") or path.name.startswith("leaderboard"):
            continue
        out[str(path.relative_to(RESULTS_DIR))] = json.loads(path.read_text())["method"]
    return out


class _Redocumented(ast.NodeTransformer):
    """Every docstring rewritten: what a documentation edit does to a syntax tree (nothing it computes)."""

    def generic_visit(self, node):
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body[0].value.value = "Rewritten documentation."
        elif isinstance(body, list) and isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            body.insert(0, ast.Expr(ast.Constant("A new docstring.")))
        return node


def test_comments_docstrings_and_layout_of_every_file_change_no_identity(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = _fingerprints(root)
    for path in sorted((root / "lmcore").rglob("*.py")):
        tree = _Redocumented().visit(ast.parse(path.read_text()))
        # ast.unparse lays every file out anew: other quotes, line breaks, parentheses, no comments
        path.write_text("# a comment on top\n" + ast.unparse(tree).replace("\n\n", "\n\n\n# a comment\n") + "\n")
    assert _fingerprints(root) == before  # so 0 committed references can become stale this way


def test_a_numerical_change_in_zhangs_loss_keys_exactly_the_runs_that_import_it(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = _fingerprints(root)
    loss = root / "lmcore" / "losses" / "zhang.py"
    text = loss.read_text()
    number = re.search(r"\b\d+\.\d+\b", text)
    assert number, "losses/zhang.py holds a float literal to change"
    loss.write_text(text[:number.start()] + str(float(number.group()) + 1.0) + text[number.end():])
    after = _fingerprints(root)
    changed = {m for (m, s, kind) in before if kind == "training" and before[(m, s, kind)] != after[(m, s, kind)]}
    assert changed == {"zhang"}
    assert all(before[k] == after[k] for k in before if k[2] == "evaluation")
    stale = sorted(path for path, method in _committed_methods().items() if method in changed)
    assert stale and all(_committed_methods()[p] == "zhang" for p in stale)


def test_the_method_registrys_seeding_is_part_of_every_training_identity(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = _fingerprints(root)
    registry = root / "lmcore" / "methods" / "__init__.py"
    text = registry.read_text()
    assert 'config["train"].get("seed", 0))' in text
    registry.write_text(text.replace('config["train"].get("seed", 0))', 'config["train"].get("seed", 0)) + 1'))
    after = _fingerprints(root)
    assert all(before[k] != after[k] for k in before if k[2] == "training")


def test_a_new_method_in_the_registry_changes_no_other_run(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = _fingerprints(root)
    registry = root / "lmcore" / "methods" / "__init__.py"
    registry.write_text(registry.read_text().replace('"c3": "lmcore.methods.c3:C3",',
                                                     '"c3": "lmcore.methods.c3:C3",\n    "new": "lmcore.methods.fse:FSE",'))
    assert _fingerprints(root) == before


def test_registry_entries_and_data_sources_are_keyed_by_the_run_that_uses_them():
    tree = working_tree()
    roots, entries = training_roots(tree, "zhang", "mtfl80")
    assert entries == {"method": "lmcore.methods.zhang:Zhang", "source": "lmcore.data.mtfl:MTFL80"}
    assert "lmcore/data/lspet.py" not in closure(tree, roots)
    assert "lmcore/data/lspet.py" in closure(tree, training_roots(tree, "pose", "lspet128")[0])
    assert code_fingerprint("zhang", source="mtfl80") != code_fingerprint("zhang", source="lspet128")


def test_the_protocol_keys_the_numbers_not_the_weights(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = _fingerprints(root)
    protocol = root / "lmcore" / "evaluation" / "protocol.py"
    protocol.write_text(protocol.read_text() + "\nTOLERANCE = 2\n")
    after = _fingerprints(root)
    assert all(before[k] == after[k] for k in before if k[2] == "training")
    assert all(before[k] != after[k] for k in before if k[2] == "evaluation")
    base = root / "lmcore" / "methods" / "base.py"  # a method's own evaluate scores, it does not train
    text = base.read_text()
    assert "few_shot = few_shot or {}" in text
    base.write_text(text.replace("few_shot = few_shot or {}", "few_shot = dict(few_shot or {})", 1))
    again = _fingerprints(root)
    assert all(after[k] == again[k] for k in before if k[2] == "training")
    assert all(after[k] != again[k] for k in before if k[2] == "evaluation")


def test_normalised_code_ignores_what_does_not_compute():
    plain = b"def f(x):\n    return x + 1\n"
    documented = b'"""Module."""\n# comment\ndef f(x):  # why\n    """Adds one."""\n    return (x\n            + 1)\n'
    assert normalised(plain) == normalised(documented)
    assert normalised(plain) != normalised(b"def f(x):\n    return x + 2\n")
    assert normalised(plain) != normalised(b"def f(y):\n    return y + 1\n")


def test_the_snapshot_edit_of_a_computing_file_changes_the_identity(monkeypatch):
    snapshot = code_identity.sources()
    before = code_fingerprint("fse")
    monkeypatch.setitem(code_identity._WORKING, "lmcore/losses/fse.py", snapshot["lmcore/losses/fse.py"] + b"\n# x\n")
    assert code_fingerprint("fse") == before  # a comment
    monkeypatch.setitem(code_identity._WORKING, "lmcore/losses/fse.py", snapshot["lmcore/losses/fse.py"] + b"\nX = 1\n")
    assert code_fingerprint("fse") != before


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_code_of_a_commit_is_read_from_git():
    tree = code_identity.commit_tree("HEAD")
    assert "lmcore/training/loop.py" in tree.files
    assert tree.files["lmcore/training/loop.py"].startswith(b'"""')


# --------------------------------------------------------------------------- the data a run reads


def test_an_image_replaced_by_another_valid_face_changes_the_data_identity(mtfl, tmp_path, monkeypatch):
    import os

    from conftest import copy_mtfl
    from lmcore.data import MTFL80

    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "cache"))
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    (root / "AFLW").unlink()  # the AFLW folder as links to each image, one of them to another face
    (root / "AFLW").mkdir()
    images = sorted((mtfl.root / "AFLW").iterdir())
    for image in images:
        os.symlink(image, root / "AFLW" / image.name)
    (root / "AFLW" / images[0].name).unlink()
    os.symlink(images[1], root / "AFLW" / images[0].name)
    copy = MTFL80(root)  # labels and lists untouched: every check passes
    assert copy.labels_sha256() == mtfl.labels_sha256()
    assert copy.fingerprint() != mtfl.fingerprint()


def test_labels_shifted_inside_the_frame_are_refused_by_their_pinned_sha256(mtfl, tmp_path):
    from conftest import copy_mtfl
    from lmcore.data import MTFL80
    from lmcore.errors import CorruptDataError

    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    test_rows = set(mtfl.splits["test_mtfl"])
    lines = []
    for line in (root / "new_training.txt").read_text().splitlines():
        parts = line.split(" ")
        if parts[0] in test_rows:  # every x of test_mtfl 8 px to the right: still inside the frame
            parts[1:6] = [repr(float(v) + 8.0) for v in parts[1:6]]
        lines.append(" ".join(parts))
    (root / "new_training.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDataError, match=r"new_training.txt: sha256 .* differs from the pinned"):
        MTFL80(root)
    assert MTFL80(root, pinned=None).labels_sha256() != mtfl.labels_sha256()  # a test copy may skip the pins


# --------------------------------------------------------------------------- numbers apart from weights


def test_a_protocol_edit_rescores_a_finished_run_from_its_checkpoint_without_training(isolated_runs, monkeypatch):
    from lmcore.training import run_method
    from lmcore.training import runs as runs_module

    tiny = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
            "train": {"resolution": 16, "batch_size": 4, "steps": 2, "checkpoint_every": 2, "eval_every": 0}}
    first = run_method("fse", "smoke", name="tiny", overrides=tiny)
    scoring = runs_module.evaluation_code
    monkeypatch.setattr(runs_module, "evaluation_code", lambda method, source: {
        **scoring(method, source), "fingerprint": "an-edited-protocol"})
    monkeypatch.setattr(runs_module, "_train", lambda *a, **k: pytest.fail("a protocol edit retrained the run"))
    again = run_method("fse", "smoke", name="tiny", overrides=tiny)
    assert again.run_dir == first.run_dir and again["identity"] == first["identity"]  # the same weights
    assert again["evaluation_identity"] != first["evaluation_identity"] and "evaluated" in again
    assert again["evaluation_code"]["fingerprint"] == "an-edited-protocol"  # which protocol scored it
