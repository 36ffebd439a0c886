"""Build her2fast's native extension by driving CMakeLists.txt (the one build definition).

``pip install .`` / ``pip install -e .`` call this; metadata lives in pyproject.toml.
Environment: ``HER2FAST_BUILD_TYPE`` (Release), ``HER2FAST_BUILD_JOBS`` (number of cores),
``HER2FAST_BUILD_DIR`` (a persistent CMake build tree for fast rebuilds).
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_type = os.environ.get("HER2FAST_BUILD_TYPE", "Release")
        # HER2FAST_BUILD_DIR keeps CMake's build tree between rebuilds (developers); default: pip's temp dir.
        build_temp = Path(os.environ.get("HER2FAST_BUILD_DIR") or Path(self.build_temp).resolve() / "cmake")
        build_temp.mkdir(parents=True, exist_ok=True)
        cmake_args = [
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DHER2FAST_OUTPUT_DIR={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DHER2FAST_BUILD_PYTHON=ON",
            "-DHER2FAST_BUILD_TESTS=OFF",
        ]
        try:
            import ninja  # noqa: F401

            cmake_args.append("-GNinja")
        except ImportError:
            pass
        jobs = os.environ.get("HER2FAST_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_temp), *cmake_args], check=True)
        subprocess.run(["cmake", "--build", str(build_temp), "--target", "_native", "-j", jobs], check=True)


setup(
    ext_modules=[CMakeExtension("her2fast._native")],
    cmdclass={"build_ext": CMakeBuild},
)
