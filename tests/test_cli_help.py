"""Every command's --help (issue 14): examples, and the defaults of its options shown
(none shown as "None" or for an on/off flag)."""

from __future__ import annotations

import re

import pytest

from edgeconv.cli import main

# (command line, defaults its help must show)
COMMANDS = [
    ([], []),
    (["generate"], ["(default: generic)"]),
    (["verify"], ["(default: O3)", "(default: native)", "(default: bench)", "(default: 0)"]),
    (["bench"], ["(default: qemu:mps2-an386)", "(default: bench)", "(default: O3,Os)"]),
    (["bench", "model.tflite"], ["(default: qemu:mps2-an386)", "(default: O3)"]),
    (["check"], ["(default: 0)"]),
    (["report"], ["(default: qemu:mps2-an386)", "(default: bench)", "(default: O3)"]),
    (["demo"], ["(default: native and qemu:mps2-an386)"]),
    (["demo", "train"], ["(default: native)", "8 for the filter, 5 for the CNN"]),
    (["demo", "image"], ["(default: qemu:mps2-an386)", "(default: demo-images)"]),
]


@pytest.mark.parametrize("argv, defaults", COMMANDS, ids=lambda v: " ".join(v) or "edgeconv")
def test_help_lists_examples_and_defaults(capsys, argv, defaults):
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert re.search(r"^examples?:$", text, re.MULTILINE), text
    assert re.search(r"^  edgeconv \w+", text, re.MULTILINE), text  # a command to copy
    for default in defaults:
        assert default in " ".join(text.split()), (default, text)
    assert "(default: None)" not in text and "(default: False)" not in text
    flat = " ".join(text.split())
    if "--target TARGET" in text:
        assert "qemu:microbit (cortex-m0)" in flat or argv == ["bench"], text  # boards listed
        assert "qemu:mps2-an386 (cortex-m4)" in flat, text


def test_top_level_help_names_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for example in ("edgeconv bench --target qemu:mps2-an386 --layers my_layers.py",
                    "edgeconv demo image"):
        assert example in text
