"""The install and uninstall subcommands: the store of patches loaded at boot."""

import logging
from pathlib import Path

from kpatchctl.context import Context
from kpatchctl.errors import KpatchError
from kpatchctl.modinfo import read_modinfo, require_livepatch, require_release
from kpatchctl.service import SERVICE_NAME, disable_service, enable_service
from kpatchctl.store import require_release_name

log = logging.getLogger(__name__)


def install_command(context: Context, module_file: str, release: str | None) -> None:
    """Check a patch module, copy it into the store and enable the boot service."""
    context.require_root("install")
    release = release or context.paths.kernel_release()
    require_release_name(release)
    path = Path(module_file)
    if not path.is_file():
        raise KpatchError(f"module file not found: {path}; check the path")
    if path.suffix != ".ko":
        raise KpatchError(f"{path} is not a .ko file; pass the module that `doit build` wrote")
    info = read_modinfo(path)
    require_livepatch(info)
    hint = f"rebuild the patch against kernel {release}"
    if info.vermagic_release:
        hint += f", or install it for its own kernel with -k {info.vermagic_release}"
    require_release(info, release, hint)

    replacing = (context.store.release_dir(release) / path.name).exists()
    target = context.store.add(path, release)
    verb = "replaced" if replacing else "installed"
    log.info("%s %s for kernel %s", verb, target, release)
    try:
        enable_service(context.paths)
    except KpatchError as error:
        raise KpatchError(
            f"{target} is installed, but {SERVICE_NAME} is not enabled: {error}"
        ) from error


def uninstall_command(context: Context, module: str, release: str | None) -> None:
    """Delete an installed patch module, and disable the boot service when none is left."""
    context.require_root("uninstall")
    release = release or context.paths.kernel_release()
    require_release_name(release)
    if "/" in module:
        raise KpatchError(
            f"invalid module name {module}: pass the installed file or module name, no path"
        )
    path = context.store.find(module, release)
    if path is None:
        raise KpatchError(
            f"{module} is not installed for kernel {release}; "
            "'kpatch list' shows the installed patches"
        )
    context.store.remove(path)
    log.info("uninstalled %s for kernel %s", path.name, release)
    if context.store.is_empty():
        disable_service(context.paths)
