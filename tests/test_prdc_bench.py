"""benchmarks/prdc.py runs and prints one Markdown row per size (no timings asserted)."""

from __future__ import annotations

from benchmarks.prdc import main


def test_the_prdc_benchmark_prints_its_table(capsys):
    assert main(["--sizes", "40", "60", "--dims", "8", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| N real = N generated | features | FID | PRDC |")
    assert [line.split(" | ")[:2] for line in lines[2:]] == [["| 40", "8"], ["| 60", "8"]]
    assert all(line.count(" s") == 3 for line in lines[2:])
