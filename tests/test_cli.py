"""The command line: a typo in the command's name gets the close command suggested, before anything runs."""

from __future__ import annotations

import pytest

from beyond_imagenet.cli import main, suggestion


@pytest.mark.parametrize(
    "argv,typo,close",
    [
        (["mlflow-lnks"], "mlflow-lnks", "mlflow-links"),
        (["-v", "reslts", "--params", "p.yaml"], "reslts", "results"),
        (["analyse"], "analyse", "analyze"),
    ],
)
def test_a_typo_suggests_the_close_command(argv, typo, close):
    assert suggestion(argv) == f"unknown command '{typo}': did you mean `beyond-imagenet {close}`?"


def test_commands_and_far_words_get_no_suggestion():
    assert suggestion(["report", "--no-mlflow"]) is None
    assert suggestion(["-v"]) is None
    assert suggestion(["zzzzzz"]) is None  # argparse lists every command instead


def test_main_refuses_a_typo_with_exit_2_and_the_hint(capsys):
    assert main(["mlflow-lnks"]) == 2
    assert "did you mean `beyond-imagenet mlflow-links`?" in capsys.readouterr().err
