"""The command-line examples in the docs and README run, and print what they say."""

from __future__ import annotations

import io
import re
import shlex
import sys
from pathlib import Path

import pytest

from scim_roles._cli import main

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def console_examples() -> list[tuple[str, str, str, int | None]]:
    """(page, command, expected output, expected exit) for each `$ scim-roles ...` in a console block."""
    examples = []
    for page in PAGES:
        for block in re.findall(r"```console\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
            for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
                command, _, output = chunk.partition("\n")
                code = re.search(r"^\[exit (\d+)\]\n", output, re.MULTILINE)
                output = re.sub(r"^\[exit \d+\]\n", "", output, flags=re.MULTILINE)
                examples.append((page.name, command, output, int(code.group(1)) if code else None))
    return examples


EXAMPLES = console_examples()


def test_docs_have_console_examples() -> None:
    """The runner finds the examples it is meant to run."""
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize(("page", "command", "expected", "code"), EXAMPLES)
def test_console_example(
    page: str, command: str, expected: str, code: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command exits as shown (0 unless an ``[exit N]`` line says otherwise) and prints exactly what is
    shown, when something is."""
    del page  # in the test id only
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps help to the terminal's width
    argv = shlex.split(command)
    assert argv[0] == "scim-roles"
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)  # argparse prints help to sys.stdout
    try:
        exit_code = main(argv[1:], stdout=out)
    except SystemExit as exit_:  # --help
        exit_code = int(exit_.code or 0)
    assert exit_code == (0 if code is None else code)
    if expected:
        assert out.getvalue() + err.getvalue() == expected
