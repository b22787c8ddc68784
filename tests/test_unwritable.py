"""One line, not a traceback (issue 39, item 15): a fit-prior in place on a folder that cannot be written is
refused before the fit; `ganvae data verify` on unreadable files names them. (Tests run as root here, where
permissions do not deny anything: the denial is simulated where the OS would raise it.)"""

from __future__ import annotations

import pytest
from conftest import tiny_config, tiny_data, train, write_idx_dataset

from ganvae.cli import main


def test_fit_prior_on_a_folder_it_cannot_write_is_refused_before_the_fit(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    train(tiny_config("vae", "data.image_size=28", "train.epochs=1"), run, data=tiny_data(size=28))
    import tempfile

    import ganvae.models.base as base

    def denied(*args, **kwargs):  # what creating a file in a folder without write permission raises
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", denied)
    monkeypatch.setattr(base, "fit_latent_prior", lambda *a, **k: pytest.fail("fitted before the check"))
    assert main(["fit-prior", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"cannot create files in {run / 'checkpoints'} (Permission denied)" in err and "Traceback" not in err


def test_data_verify_names_an_unreadable_file(tmp_path, monkeypatch, capsys):
    folder = write_idx_dataset(tmp_path / "idx", n_train=20, n_test=10)
    from ganvae.data import sources

    real = sources.md5_file

    def unreadable(path, *args, **kwargs):
        if "train-images" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sources, "md5_file", unreadable)
    rc = main(["data", "verify", "mnist", "--data-dir", str(folder)])
    out = capsys.readouterr()
    assert rc != 0 and "cannot be read (Permission denied)" in out.out + out.err and "Traceback" not in out.err
