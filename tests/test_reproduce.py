"""Reproducing a committed reference from its record (lmcore.reproduce, --from-record)."""
import copy
import json
import shlex

import pytest

from lmcore import reproduce
from lmcore.config import deep_update, parse_assignment
from lmcore.errors import ConfigError
from lmcore.train import main as train_main
from lmcore.training.runs import resolve_config

REFERENCES = reproduce.reference_records()


def test_there_are_committed_references_to_reproduce():
    assert len(REFERENCES) >= 10 and {"fse", "zhang", "jakab"} <= {r.method for r in REFERENCES}


@pytest.mark.parametrize("record", REFERENCES, ids=lambda r: f"{r.method}/{r.run_name}")
def test_the_printed_command_resolves_to_the_records_config(record):
    """The command as a shell reads it (quoting included) gives every setting the record has."""
    argv = shlex.split(shlex.join(reproduce.reproduction_command(record)))
    assert argv[3] == record.method and argv[argv.index("--profile") + 1] == record.profile
    overrides = {}
    for i, word in enumerate(argv):
        if word == "--set":
            overrides = deep_update(overrides, parse_assignment(argv[i + 1]))
    resolved = resolve_config(record.method, record.profile, overrides)
    absent = set(reproduce.predated_settings(record))
    assert [k for k in reproduce._differences(resolved, record["config"]) if k not in absent] == []


def test_the_command_sets_only_what_differs_from_the_profile():
    record = next(r for r in REFERENCES if (r.method, r.run_name) == ("zhang", "k30"))
    sets = [w for w in reproduce.reproduction_command(record) if "=" in w]
    assert "method.num_landmarks=30" in sets and not any(s.startswith("data.") for s in sets)


def test_a_setting_this_code_no_longer_has_is_refused_with_the_commit_to_check_out():
    record = copy.deepcopy(dict(next(r for r in REFERENCES if r.method == "zhang")))
    record["config"]["method"]["a_setting_removed_since"] = 1.0
    with pytest.raises(ConfigError, match=record["git_commit"][:10]):
        reproduce.record_overrides(record)
    record["config"]["method"].pop("a_setting_removed_since")
    record["config"]["train"]["batch_size"] = "thirty-two"  # reachable by no override of this code
    with pytest.raises(ConfigError, match="check out commit"):
        reproduce.record_overrides(record)


def test_from_record_shows_the_records_config(capsys):
    record = next(r for r in REFERENCES if (r.method, r.run_name) == ("zhang", "k10"))
    assert train_main(["--from-record", str(record.path), "--show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    predated = set(reproduce.predated_settings(record))  # settings added since take today's defaults
    assert [k for k in reproduce._differences(shown, record["config"]) if k not in predated] == []
    # --set applies on top of the record's settings
    assert train_main(["--from-record", str(record.path), "--set", "train.steps=1500", "--show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["steps"] == 1500


@pytest.mark.parametrize("argv, says", [
    (["--from-record", "no/such/record.json"], "no such file"),
    (["zhang", "--from-record", "results/zhang/k10.json"], "not both"),
    ([], "name a method"),
])
def test_from_record_user_errors_are_one_line_and_exit_2(argv, says, capsys):
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_the_reproduction_page_lists_every_reference_with_a_command():
    page = reproduce.reproduction_page()
    for record in REFERENCES:
        assert f"**{record.run_name}**" in page
    assert page.count("--from-record results/") >= len(REFERENCES) - 1


def test_the_reproduction_page_is_a_table_per_method_with_the_commands_collapsed_and_short():
    page = reproduce.reproduction_page()
    assert page.count("````{dropdown}") == page.count("\n## ") and ":class-container: lmbook-details" in page
    block = [line for line in page.splitlines() if line.startswith(("python -m", "    --set"))]
    assert block and max(len(line) for line in block) <= 110  # one --set a line: nothing cut at the right
    argv = ["python", "-m", "lmcore.train", "zhang", "--set", "train.steps=5", "--set", "method.x=[1, 2]"]
    assert reproduce.command_lines(argv) == ("python -m lmcore.train zhang \\\n    --set train.steps=5 \\\n"
                                             "    --set 'method.x=[1, 2]'")
