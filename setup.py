"""Build hooks (the rest of the configuration is pyproject.toml): put
nxcompile_lava.pth into site-packages, in a wheel and in an editable install,
so that every interpreter of the environment arms nxcompile_lava_hook's import
hook at start-up (lava-nc 0.10.0 then imports on Python 3.11 anywhere)."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "nxcompile_lava.pth"


class BuildPyWithPth(build_py):
    """A wheel holds the .pth at its root, which pip installs into site-packages."""

    def run(self):
        super().run()
        self.copy_file(PTH, str(Path(self.build_lib, PTH)))

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib, PTH))]


class EditableWheelWithPth(editable_wheel):
    """An editable install's wheel holds the .pth too (it imports from the checkout)."""

    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
        files, mapping = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        self.copy_file(PTH, str(Path(unpacked_wheel, PTH)))
        return [*files, str(Path(unpacked_wheel, PTH))], mapping


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
