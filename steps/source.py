"""Kernel source: the user's tree, or Debian's linux-source package unpacked once."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cache import source_root

from .commands import run
from .errors import BuildError

log = logging.getLogger("klpbuild.source")

DEFAULT_PACKAGE = "linux-source-6.1"


@dataclass(frozen=True)
class SourceRequest:
    tree: Path | None = None
    package: str = DEFAULT_PACKAGE


@dataclass(frozen=True)
class Source:
    tree: Path
    # Names the source in build keys: package and version, or the tree's path and release.
    source_id: str


def package_version(package: str) -> str | None:
    try:
        completed = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status} ${Version}", package],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise BuildError(
            "dpkg-query not found: the default kernel source needs Debian; pass src="
        ) from None
    fields = completed.stdout.split()
    if completed.returncode != 0 or "installed" not in fields[:3]:
        return None
    return fields[-1]


def candidate_version(package: str) -> str:
    """Return the installed version of PACKAGE, or the one apt would install."""
    version = package_version(package)
    if version is not None:
        return version
    completed = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True)
    for line in completed.stdout.splitlines():
        if line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            if candidate and candidate != "(none)":
                return candidate
    raise BuildError(
        f"{package} is neither installed nor available from apt; pass src= with a kernel tree"
    )


def source_identity(request: SourceRequest) -> str:
    """Name the source for build keys without unpacking or installing anything."""
    if request.tree is not None:
        tree = Path(request.tree).resolve()
        if not (tree / "Makefile").is_file():
            raise BuildError(f"src={request.tree} is not a kernel source tree (no Makefile)")
        return f"tree:{tree}:{kernel_release(tree)}"
    return f"{request.package}_{candidate_version(request.package)}"


def install_package(package: str) -> str:
    if os.geteuid() != 0:
        raise BuildError(
            f"{package} is not installed; run `apt-get install {package}` as root, or pass src="
        )
    log.info("installing %s with apt-get", package)
    run(
        ["apt-get", "install", "-y", "--no-install-recommends", package],
        env={"DEBIAN_FRONTEND": "noninteractive"},
        what=f"apt-get install {package}",
    )
    version = package_version(package)
    if version is None:
        raise BuildError(f"apt-get did not install {package}")
    return version


def unpack(tarball: Path, destination: Path) -> None:
    """Unpack TARBALL's single top folder as DESTINATION, atomically."""
    scratch = destination.with_name(destination.name + ".unpacking")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    log.info("unpacking %s into %s", tarball, destination)
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(scratch, filter="tar")
    except (OSError, tarfile.TarError) as error:
        shutil.rmtree(scratch, ignore_errors=True)
        raise BuildError(f"cannot unpack {tarball}: {error}") from None
    (top,) = list(scratch.iterdir())
    top.rename(destination)
    scratch.rmdir()


def kernel_release(tree: Path) -> str:
    values = {}
    for line in (tree / "Makefile").read_text().splitlines()[:10]:
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return "{VERSION}.{PATCHLEVEL}.{SUBLEVEL}{EXTRAVERSION}".format(**values)


def prepare_source(request: SourceRequest) -> Source:
    """Return the kernel tree to build, unpacking the default package when needed."""
    if request.tree is not None:
        tree = Path(request.tree).resolve()
        if not (tree / "Makefile").is_file() or not (tree / "kernel").is_dir():
            raise BuildError(
                f"src={request.tree} is not a kernel source tree (no Makefile and kernel/)"
            )
        if (tree / ".config").exists():
            raise BuildError(
                f"{tree} has a .config; builds use O= folders, so run `make mrproper` there first"
            )
        return Source(tree, source_identity(request))

    version = package_version(request.package) or install_package(request.package)
    name = f"{request.package}_{version}"
    tree = source_root() / name
    if not (tree / "Makefile").is_file():
        tarball = Path("/usr/src") / f"{request.package}.tar.xz"
        if not tarball.is_file():
            raise BuildError(f"{tarball} is missing; reinstall {request.package}")
        unpack(tarball, tree)
    return Source(tree, name)
