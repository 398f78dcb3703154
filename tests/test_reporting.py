"""Tables and verdicts built from run records."""
from lmcore import reporting


def _record(name, error, steps=100):
    return {"run_name": name, "profile": "cpu", "steps": steps,
            "metrics": {"forward": {"test_mtfl": {"mean": error}}}}


def test_a_reference_below_the_target_meets_it_and_one_above_says_by_how_much():
    lines = reporting.target_verdicts([_record("good", 9.99), _record("bad", 12.5, 7000)], target=10.7)
    assert lines[0] == "good [cpu, 100 steps]: 9.99 % on test_mtfl, meets the target of 10.70 %"
    assert lines[1] == "bad [cpu, 7000 steps]: 12.50 % on test_mtfl, misses by 1.80 points the target of 10.70 %"
    # the target itself is not below the target
    assert "misses by 0.00" in reporting.target_verdicts([_record("edge", 10.7)], target=10.7)[0]
