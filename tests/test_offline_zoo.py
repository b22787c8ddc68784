"""Every command that needs real images of a pretrained model works offline: from a folder with no MNIST beside
it and an empty cache, the packaged mnist-25k stands in, and the protocol says so."""

import json

from ganvae.cli import main


def test_reconstruct_evaluate_and_compare_work_offline(offline, capsys, caplog):
    assert main(["reconstruct", "mnist-vae", "-n", "8", "--out", "r.png"]) == 0
    assert main(["reconstruct", "mnist-cvae", "--as-digit", "5", "-n", "8", "--out", "r5.png"]) == 0
    assert (offline / "r.png").is_file() and (offline / "r5.png").is_file()
    assert "using the packaged mnist-25k" in caplog.text
    capsys.readouterr()
    assert main(["evaluate", "mnist-gan", "--n-samples", "100", "--out", "m.json"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((offline / "m.json").read_text())
    assert result["dataset"] == "mnist-25k" and "mnist is not on this machine" in result["protocol"]["stand_in"]
    assert "using the packaged mnist-25k" in printed
    assert main(["compare", "mnist-gan", "mnist-cgan", "--n-samples", "100", "--out", "report"]) == 0
    assert "mnist-25k (mnist is not on this machine" in (offline / "report" / "report.md").read_text()


def test_compare_takes_a_dataset(offline):
    assert main(["compare", "mnist-gan", "mnist-vae", "--n-samples", "100", "--dataset", "mnist-5k",
                 "--out", "report"]) == 0
    text = (offline / "report" / "report.md").read_text()
    assert "mnist-5k" in text and "not on this machine" not in text  # asked for: no stand-in needed


def test_an_explicit_data_dir_is_never_replaced(offline):
    """Asked for a folder that lacks the files: the error names it (a stand-in would hide the mistake)."""
    assert main(["evaluate", "mnist-gan", "--n-samples", "100", "--data-dir", str(offline / "nowhere")]) == 2
