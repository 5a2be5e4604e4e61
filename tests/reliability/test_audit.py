"""Untrusted data: the package never unpickles, never builds a shell line, never puts
data into SQL text. Checked on the source itself (AST, not only grep), with the checker
proven on examples of what it must catch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "anyfind"
SQL_CALLS = {"text", "exec_driver_sql", "execute", "executescript", "executemany"}
FORBIDDEN_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("cPickle", "load"), ("cPickle", "loads"),
    ("marshal", "load"), ("marshal", "loads"), ("shelve", "open"), ("os", "system"),
    ("os", "popen"), ("dill", "load"), ("dill", "loads"), ("joblib", "load"),
}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _quoted_identifiers_only(node: ast.JoinedStr) -> bool:
    """Every {value} sits inside double quotes and is a CONSTANT name: a quoted identifier."""
    parts = node.values
    for i, part in enumerate(parts):
        if not isinstance(part, ast.FormattedValue):
            continue
        before = parts[i - 1] if i else None
        after = parts[i + 1] if i + 1 < len(parts) else None
        quoted = (isinstance(before, ast.Constant) and str(before.value).endswith('"')
                  and isinstance(after, ast.Constant) and str(after.value).startswith('"'))
        constant = isinstance(part.value, ast.Name) and part.value.id.isupper()
        if not (quoted and constant):
            return False
    return True


def problems(source: str, name: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        where = f"{name}:{node.lineno}"
        dotted = _dotted(node.func)
        # The builtins eval/exec are bare names; `model.eval()` (torch's eval mode) is not.
        builtin = isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec")
        if dotted[-2:] in FORBIDDEN_CALLS or builtin:
            found.append(f"{where}: {'.'.join(dotted)}")
        if dotted[-2:] == ("torch", "load") and not _is_true(_kw(node, "weights_only")):
            found.append(f"{where}: torch.load without weights_only=True")
        if dotted[-2:] in (("numpy", "load"), ("np", "load")) and _is_true(
                _kw(node, "allow_pickle")):
            found.append(f"{where}: numpy.load with allow_pickle=True")
        if dotted[-2:] == ("yaml", "load") and "Safe" not in ast.unparse(
                _kw(node, "Loader") or ast.Constant(None)):
            found.append(f"{where}: yaml.load without a SafeLoader")
        if _is_true(_kw(node, "shell")):
            found.append(f"{where}: shell=True")
        if dotted[:1] == ("subprocess",) and node.args and not isinstance(
                node.args[0], ast.List | ast.Tuple | ast.Name):
            found.append(f"{where}: subprocess with a command string")
        if dotted[-1:] == ("extractall",) and _kw(node, "filter") is None:
            found.append(f"{where}: extractall without filter=")
        if dotted[-1:] and dotted[-1] in SQL_CALLS and node.args:
            sql = node.args[0]
            if isinstance(sql, ast.JoinedStr) and not _quoted_identifiers_only(sql):
                found.append(f"{where}: SQL f-string with a value that is not a quoted "
                             "constant identifier")
            elif isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Add | ast.Mod):
                found.append(f"{where}: SQL built by + or %")
            elif (isinstance(sql, ast.Call) and isinstance(sql.func, ast.Attribute)
                  and sql.func.attr == "format"):
                found.append(f"{where}: SQL built by str.format")
    return found


@pytest.mark.parametrize("bad", [
    "import pickle\npickle.loads(data)",
    "import torch\ntorch.load(path)",
    "import torch\ntorch.load(path, weights_only=False)",
    "import subprocess\nsubprocess.run(f'ffmpeg -i {path}', shell=True)",
    "import subprocess\nsubprocess.run('ls ' + path)",
    "import os\nos.system('rm ' + path)",
    "conn.execute(text(f\"SELECT * FROM items WHERE uri = '{uri}'\"))",
    "conn.execute(text(f'SELECT * FROM \"{table}\"'))",
    "cur.execute('SELECT * FROM items WHERE id = %s' % item_id)",
    "cur.execute('SELECT * FROM {}'.format(name))",
    "import tarfile\ntarfile.open(p).extractall(dest)",
    "import numpy as np\nnp.load(p, allow_pickle=True)",
    "import yaml\nyaml.load(data)",
    "eval(user_input)",
    "exec(code)",
])
def test_the_checker_catches(bad):
    assert problems(bad)


@pytest.mark.parametrize("fine", [
    "import torch\ntorch.load(path, map_location='cpu', weights_only=True)",
    "import subprocess\nsubprocess.run(['espeak-ng', '-w', str(path), text], check=True)",
    "conn.execute(text('SELECT * FROM items WHERE uri = :uri'), {'uri': uri})",
    "conn.execute(text(f'DELETE FROM \"{TABLE}\" WHERE rowid = :rowid'), {'rowid': 1})",
    "conn.execute(select(Item.id).where(Item.uri == uri))",
    "import tarfile\ntarfile.open(p).extractall(dest, filter='data')",
    "model = model.float().eval()",
])
def test_the_checker_accepts(fine):
    assert problems(fine) == []


def test_the_package_handles_untrusted_data_safely():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 30
    found = [p for f in files for p in problems(f.read_text(), str(f.relative_to(PACKAGE)))]
    assert found == []
