"""Give the qemu guest a Python interpreter, made from the host's own python3.

The guest of steps/vm.py has only busybox, but the kpatch command is Python.
Copying the host interpreter needs no network and no root filesystem image.
The binary, the shared libraries that ldd lists (dynamic loader included) and
the standard library go to the same absolute paths in a tree, and run_guest
merges that tree into the initramfs. Test suites, GUI modules, build files
and extension modules that the kpatch command never imports stay out: for
Debian 12's Python 3.11 the tree takes 33 MB on disk.

The runtime tree is built once per interpreter binary and kept under
``<cache>/guest/python<version>-<key>/``. It is a snapshot, so it stays
consistent with itself when the host's libraries are upgraded later. The
packages the guest runs (kpatchctl and its dependencies) change with every
edit, so they go to a second, small tree that is rebuilt each time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from cache import cache_root

from .commands import run
from .errors import BuildError

log = logging.getLogger("klpbuild.guestpython")

DEFAULT_PYTHON = Path("/usr/bin/python3")

# Bumped whenever the contents of the runtime tree change, so that older
# cached trees are not reused.
RUNTIME_FORMAT = 1

# Standard library entries that the kpatch command never imports. Build
# files (config-3.11-x86_64-linux-gnu, which contains a static libpython) are
# the largest of them.
EXCLUDED_STDLIB = (
    "__pycache__",
    "config-*",
    "curses",
    "dbm",
    "dist-packages",
    "distutils",
    "ensurepip",
    "idlelib",
    "lib2to3",
    "pydoc_data",
    "site-packages",
    "sqlite3",
    "test",
    "tkinter",
    "turtle.py",
    "turtledemo",
    "venv",
)

# Extension modules left out: test helpers, terminal, database and audio
# modules, and the OpenSSL bindings. Without _hashlib, hashlib falls back to
# the built-in hash modules, and libcrypto alone is 4.5 MB.
EXCLUDED_EXTENSIONS = (
    "_ctypes_test*",
    "_curses*",
    "_dbm*",
    "_gdbm*",
    "_hashlib*",
    "_sqlite3*",
    "_ssl*",
    "_test*",
    "_tkinter*",
    "_xxtestfuzz*",
    "audioop*",
    "nis*",
    "ossaudiodev*",
    "readline*",
    "xxlimited*",
)

LAYOUT_SCRIPT = """
import json, sys, sysconfig
print(json.dumps({
    "executable": sys.executable,
    "version": "%d.%d" % sys.version_info[:2],
    "full_version": sys.version,
    "stdlib": sysconfig.get_path("stdlib"),
    "dynload": sysconfig.get_config_var("DESTSHARED"),
    "purelib": sysconfig.get_path("purelib"),
    "scripts": sysconfig.get_path("scripts"),
}))
"""


@dataclass(frozen=True)
class PythonLayout:
    """Absolute paths of an interpreter's parts, as the interpreter reports them.

    The guest gets every part at the same path, so the copied binary finds
    its standard library the way it does on the host.
    """

    executable: Path
    version: str
    full_version: str
    stdlib: Path
    dynload: Path
    purelib: Path
    scripts: Path


@dataclass(frozen=True)
class GuestPythonRequest:
    """The interpreter to copy and what to install into it.

    PACKAGES are import names, copied from where the running interpreter
    imports them (the project and its virtual environment). SCRIPTS are
    (name, "module:function") pairs, written as console scripts. Each of the
    DISTRIBUTIONS gets a minimal dist-info folder, so that importlib.metadata
    returns its version in the guest.
    """

    work: Path
    python: Path = DEFAULT_PYTHON
    packages: tuple[str, ...] = ("kpatchctl", "elftools")
    scripts: tuple[tuple[str, str], ...] = (("kpatch", "kpatchctl.cli:main"),)
    distributions: tuple[str, ...] = ("klpbuild",)


@dataclass(frozen=True)
class GuestPython:
    """The two trees to pass to Guest(trees=...) and the guest path of the interpreter."""

    runtime_tree: Path
    package_tree: Path
    interpreter: Path

    @property
    def trees(self) -> tuple[Path, ...]:
        return (self.runtime_tree, self.package_tree)


def read_layout(python: Path) -> PythonLayout:
    """Ask PYTHON for its executable, version and library folders."""
    if not python.is_file():
        raise BuildError(f"Python interpreter {python} not found; install python3")
    fields = json.loads(run([str(python), "-c", LAYOUT_SCRIPT], what=f"{python} -c"))
    executable = Path(fields["executable"]).resolve()
    return PythonLayout(
        executable=executable,
        version=fields["version"],
        full_version=fields["full_version"],
        stdlib=Path(fields["stdlib"]),
        dynload=Path(fields["dynload"]),
        purelib=Path(fields["purelib"]),
        scripts=Path(fields["scripts"]),
    )


def parse_ldd(output: str) -> list[Path]:
    """Return the library paths in ldd output, the dynamic loader included.

    ldd prints ``name => path (address)`` for a library and ``path (address)``
    for the loader. The vDSO has no file and is skipped. A library that is
    ``not found`` raises BuildError, because the guest could not start without it.
    """
    libraries = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith("linux-vdso") or line.startswith("statically linked"):
            continue
        name, arrow, rest = line.partition("=>")
        target = rest.strip() if arrow else name.strip()
        if target.startswith("not found"):
            raise BuildError(f"shared library {name.strip()} not found; ldd cannot resolve it")
        path = target.split(" (", 1)[0].strip()
        if path.startswith("/"):
            libraries.append(Path(path))
    return libraries


def shared_libraries(binaries: list[Path]) -> list[Path]:
    """Run ldd on each binary and return the union of the libraries, sorted."""
    found: set[Path] = set()
    for binary in binaries:
        found.update(parse_ldd(run(["ldd", str(binary)], what=f"ldd {binary}")))
    return sorted(found)


def runtime_key(layout: PythonLayout) -> str:
    """Return a short key for one interpreter binary and the tree format."""
    digest = hashlib.sha256()
    digest.update(layout.executable.read_bytes())
    parts = (RUNTIME_FORMAT, layout.full_version, EXCLUDED_STDLIB, EXCLUDED_EXTENSIONS)
    for part in parts:
        digest.update(b"\0" + repr(part).encode())
    return digest.hexdigest()[:16]


def guest_path(tree: Path, absolute: Path) -> Path:
    """Return where the absolute guest path ABSOLUTE lives inside TREE."""
    return tree / str(absolute).lstrip("/")


def _copy_file(source: Path, tree: Path, absolute: Path) -> None:
    """Copy SOURCE, symbolic links followed, to the guest path ABSOLUTE in TREE."""
    target = guest_path(tree, absolute)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def kept_extensions(layout: PythonLayout) -> list[Path]:
    """Return the interpreter's extension modules that match no EXCLUDED_EXTENSIONS pattern."""
    kept = []
    for path in layout.dynload.glob("*.so"):
        if not any(fnmatch(path.name, pattern) for pattern in EXCLUDED_EXTENSIONS):
            kept.append(path)
    return sorted(kept)


def compile_tree(python: Path, tree: Path, folder: Path) -> None:
    """Write unchecked-hash .pyc files for the sources under FOLDER inside TREE.

    The guest then imports without compiling (slow under emulation) and
    without comparing timestamps. The paths recorded in the .pyc files are
    guest paths, so tracebacks in the guest point at the right files.
    """
    command = [
        str(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(tree),
        "-p",
        "/",
        str(folder),
    ]
    run(command, what="compileall")


def populate_runtime(layout: PythonLayout, tree: Path) -> None:
    """Copy the interpreter, its libraries and the standard library into TREE."""
    _copy_file(layout.executable, tree, layout.executable)
    versioned = f"python{layout.version}"
    for alias in ("python3", versioned):
        link = guest_path(tree, layout.executable.parent / alias)
        if not link.exists():
            link.symlink_to(layout.executable.name)

    # The standard library, then the extension modules (which may sit inside it).
    shutil.copytree(
        layout.stdlib,
        guest_path(tree, layout.stdlib),
        symlinks=True,
        ignore=shutil.ignore_patterns(*EXCLUDED_STDLIB, "lib-dynload"),
        dirs_exist_ok=True,
    )
    extensions = kept_extensions(layout)
    for extension in extensions:
        _copy_file(extension, tree, extension)

    # Shared libraries at the paths ldd printed, which the dynamic loader searches.
    for library in shared_libraries([layout.executable, *extensions]):
        _copy_file(library, tree, library)

    compile_tree(layout.executable, tree, guest_path(tree, layout.stdlib))


def runtime_tree(python: Path = DEFAULT_PYTHON) -> tuple[PythonLayout, Path]:
    """Return the layout of PYTHON and its cached runtime tree, building it if missing.

    The tree is built in a temporary folder beside its final place and renamed
    into place, so a concurrent run or an interrupted build never leaves a
    half-built tree that a later run would take as complete.
    """
    layout = read_layout(python)
    folder = cache_root() / "guest"
    tree = folder / f"python{layout.version}-{runtime_key(layout)}"
    if tree.is_dir():
        log.debug("reusing guest Python runtime %s", tree)
        return layout, tree
    log.info("building guest Python runtime %s from %s", tree, layout.executable)
    folder.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=folder, prefix=f".{tree.name}-"))
    try:
        populate_runtime(layout, partial)
        os.rename(partial, tree)
    except OSError:
        if not tree.is_dir():
            raise
        log.info("another run built %s first, using it", tree)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return layout, tree


def package_source(name: str) -> Path:
    """Return the folder of the importable package NAME in this interpreter."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"package {name} not found; install the project with scripts/setup.sh")
    return Path(list(spec.submodule_search_locations)[0])


def console_script(layout: PythonLayout, entry_point: str) -> str:
    """Return the text of a console script that calls "module:function"."""
    module, _, function = entry_point.partition(":")
    return (
        f"#!{layout.executable}\n"
        "import sys\n"
        f"from {module} import {function}\n"
        f"sys.exit({function}())\n"
    )


def write_metadata(site: Path, distribution: str) -> None:
    """Write a dist-info folder with the name and version of a host distribution."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(
            f"distribution {distribution} is not installed; run scripts/setup.sh"
        ) from None
    folder = site / f"{distribution}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )


def populate_packages(request: GuestPythonRequest, layout: PythonLayout, tree: Path) -> None:
    """Copy the requested packages, console scripts and metadata into TREE."""
    site = guest_path(tree, layout.purelib)
    site.mkdir(parents=True)
    for name in request.packages:
        shutil.copytree(
            package_source(name),
            site / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    for distribution in request.distributions:
        write_metadata(site, distribution)
    compile_tree(layout.executable, tree, site)

    scripts = guest_path(tree, layout.scripts)
    scripts.mkdir(parents=True, exist_ok=True)
    for name, entry_point in request.scripts:
        script = scripts / name
        script.write_text(console_script(layout, entry_point))
        script.chmod(0o755)


def prepare_guest_python(request: GuestPythonRequest) -> GuestPython:
    """Build or reuse the cached runtime tree, and write a fresh package tree in REQUEST.work."""
    layout, runtime = runtime_tree(request.python)
    packages = request.work / "guest-packages"
    shutil.rmtree(packages, ignore_errors=True)
    populate_packages(request, layout, packages)
    return GuestPython(runtime_tree=runtime, package_tree=packages, interpreter=layout.executable)
