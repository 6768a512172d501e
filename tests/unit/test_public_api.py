"""The curated public API: every exported name resolves, and importing densharp loads no heavy dependency."""

import subprocess
import sys

import densharp


def test_every_public_name_resolves():
    for name in densharp.__all__:
        assert getattr(densharp, name) is not None, name


def test_import_is_light():
    code = "import sys, densharp; print(sorted(m for m in ('torch', 'matplotlib', 'gemmi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
