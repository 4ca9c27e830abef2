"""examples/quickstart.ipynb runs from top to bottom (nbclient, a fresh ipykernel), offline, on
the cached MNIST: the Python API as a notebook user meets it."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


@pytest.mark.slow  # a kernel start, torch and Lightning imports, two short trainings: ~30-60 s
def test_quickstart_notebook_runs(mnist_dir, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("GAN_LIGHTNING_DATA_DIR", str(mnist_dir))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "commit it without outputs"
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()
    printed = [
        "".join(output.get("text", "") for output in cell.get("outputs", []))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    assert "real batches: 10 samples: (4, 1, 28, 28)" in printed[1]
    assert "train/" in printed[2]
    assert "gan_lightning.modules.gan.GAN (3, 122, 122)" in printed[3]
    assert (tmp_path / "quickstart_runs" / "samples.png").stat().st_size > 0
    assert (tmp_path / "quickstart_runs" / "composed" / "checkpoints" / "last.ckpt").is_file()
