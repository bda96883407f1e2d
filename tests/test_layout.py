# SPDX-License-Identifier: Apache-2.0
"""The package's layout rules that import-linter does not check (README "Layout")."""

import ast
import pathlib
import re

import grimp

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "torchcompile"


def test_layout_has_no_import_cycles():
    graph = grimp.build_graph("torchcompile")
    cycles = sorted(
        (a, b)
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if graph.find_shortest_chain(importer=b, imported=a)
    )
    assert cycles == []


def test_layout_only_model_py_reads_the_models_private_attributes():
    pattern = re.compile(r"model\._[a-z]|getattr\((self\.)?model, *[\"']_")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "model.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_layout_every_module_opens_with_what_it_owns():
    missing = [
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert missing == []
