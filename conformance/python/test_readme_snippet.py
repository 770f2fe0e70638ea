"""The README's Python snippet, run as written against a real ledgerd.

The snippet is taken from the README itself (its first ```python block), with
only the endpoint and the data directory pointed at this suite's ledger, so
the README cannot drift from what works."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python block"
    return blocks[0]


def test_readme_python_snippet_runs(ledger, tmp_path):
    code = readme_snippet()
    assert "https://localhost:8443" in code and '"data/' in code
    code = code.replace("https://localhost:8443", ledger.endpoint)
    code = code.replace('"data/', '"' + str(ledger.data_dir) + "/")
    script = tmp_path / "readme_snippet.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.fullmatch(r"receipt verified for \d+\.\d+\n", proc.stdout), proc.stdout
