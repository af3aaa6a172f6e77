"""Bundles libluminars.so into the package when one is built: $LUMINARS_LIBRARY, else the
checkout's build/libluminars.so (scripts/build.sh). Without one, the package looks for the library
at import time (LUMINARS_LIBRARY, the checkout's build/, or one installed by cmake --install)."""
import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        library = os.environ.get("LUMINARS_LIBRARY") or Path(__file__).resolve().parent.parent / "build" / "libluminars.so"
        library = Path(library)
        if library.exists() and not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "luminars" / "libluminars.so"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(library.resolve(), target)


setup(cmdclass={"build_py": BuildWithLibrary})
