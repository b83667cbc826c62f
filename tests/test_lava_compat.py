"""lava-nc 0.10.0 imports on Python 3.11 through mapper.lava_compat, or in any interpreter of
the environment through nxcompile_lava.pth (nxcompile_lava_hook); site-packages untouched."""
import hashlib
import importlib.util
import shutil
import site
import sys
from pathlib import Path

import pytest

from mapper import lava_compat
from tests.helpers import ROOT, run_python

def _var_model_file() -> Path:
    return Path(importlib.util.find_spec(lava_compat.PATCHED_MODULE).origin)


def _on_disk(path: Path) -> dict:
    """Hashes of var_model.py and of its cached bytecode (None where absent)."""
    cached = Path(importlib.util.cache_from_source(str(path)))
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
            for p in (path, cached)}


def test_lava_imports_and_runs_through_the_hook_and_site_packages_is_untouched():
    path = _var_model_file()
    before = _on_disk(path)
    res = run_python(
        "import mapper.lava_compat\n"
        "import numpy as np, sys\n"
        "from lava.proc.lif.process import LIF\n"
        "from lava.magma.core.run_conditions import RunSteps\n"
        "from lava.magma.core.run_configs import Loihi2SimCfg\n"
        "lif = LIF(shape=(2,), bias_mant=np.array([100, 250]), vth=3, du=4095)\n"
        "try:\n"
        "    lif.run(condition=RunSteps(num_steps=3),\n"
        "            run_cfg=Loihi2SimCfg(select_tag='fixed_pt'))\n"
        "    print(lif.v.get().astype(int).tolist())\n"
        "finally:\n"
        "    lif.stop()\n")
    assert res.returncode == 0, res.stderr
    # vth << 6 = 192: v = 100, 200 -> spike at step 2 and reset, then 100; 250 spikes every step.
    assert res.stdout.split("\n")[0] == "[100, 0]"
    assert _on_disk(path) == before      # neither the source nor its bytecode cache written
    text = path.read_text()
    assert text.count("ByteEncoder = ByteEncoder()") == 8 and "default_factory" not in text


# Site-packages on sys.path without processing its .pth files (python -S), so the start-up
# hook is off whether or not this environment has nxcompile_lava.pth installed.
# (-S also skips the venv's sys.prefix: the paths are those on this interpreter's sys.path.)
_NO_PTH = ("import site, sys\n"
           f"sys.path.extend({[p for p in sys.path if p.endswith('site-packages')]!r})\n")


def test_without_the_hook_lava_does_not_import_on_this_python():
    res = run_python(_NO_PTH + "from lava.proc.lif.process import LIF", "-B", "-S")   # -B: no bytecode
    assert res.returncode != 0
    assert "mutable default" in res.stderr and "ByteEncoder" in res.stderr


def test_the_pth_file_arms_the_hook_without_importing_lava(tmp_path):
    """site processes nxcompile_lava.pth as it does at start-up: afterwards neither
    lava, numpy nor re is imported, nor any nxcompile package (it would shadow
    another checkout on the path), and a plain lava import works."""
    shutil.copy(ROOT / "nxcompile_lava.pth", tmp_path)
    res = run_python(_NO_PTH + f"site.addsitedir({str(tmp_path)!r})\n"
                     "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
                     "('lava', 'numpy', 're', 'nxcompile', 'mapper', 'hwmodel', 'partitioner'))\n"
                     "print(heavy)\n"
                     "from lava.proc.lif.process import LIF\n"
                     "print(LIF.__name__)\n", "-B", "-S")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["[]", "LIF"]


def test_this_environment_imports_lava_without_nxcompile():
    """`pip install -e .` (the Makefile, CI) puts nxcompile_lava.pth into site-packages:
    a fresh interpreter of this environment imports lava with no nxcompile line."""
    installed = [Path(d, "nxcompile_lava.pth") for d in site.getsitepackages()]
    if not any(p.exists() for p in installed):
        pytest.fail("nxcompile_lava.pth is not installed in this environment's site-packages; "
                    "reinstall the package: pip install -e '.[dev]' (make does when "
                    "pyproject.toml, setup.py or the Makefile change)")
    res = run_python("import sys\nfrom lava.proc.lif.process import LIF\n"
                     "print(LIF.__name__, 'nxcompile' in sys.modules)", "-B")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["LIF", "False"]


def test_hook_is_installed_once_and_var_model_is_patched():
    lava_compat.import_lava()
    lava_compat.import_lava()
    finders = [f for f in sys.meta_path if isinstance(f, lava_compat._VarModelFinder)]
    assert len(finders) == 1
    var_model = sys.modules[lava_compat.PATCHED_MODULE]
    assert var_model.CoreEncoder().x is not var_model.CoreEncoder().x   # a fresh default each


def test_unexpected_source_text_fails_clearly():
    original = _var_model_file().read_text()
    assert issubclass(lava_compat.LavaCompatError, lava_compat.PatchError)
    with pytest.raises(lava_compat.PatchError, match="lava-nc==0.10.0"):
        lava_compat.patch_source(original.replace("ByteEncoder = ByteEncoder()", "int = 0", 1))
    with pytest.raises(lava_compat.PatchError, match="found 0 fields"):
        lava_compat.patch_source(lava_compat.patch_source(original))
