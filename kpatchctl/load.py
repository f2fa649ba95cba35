"""The load and signal subcommands: insert patch modules and finish their transitions."""

import logging
from pathlib import Path

from kpatchctl.context import Context
from kpatchctl.errors import KpatchError, ModuleBusyError, TransitionTimeoutError
from kpatchctl.modinfo import read_modinfo, require_livepatch, require_release
from kpatchctl.procfs import blocking_tasks, loaded_modules, patches_disabled_at_boot
from kpatchctl.transition import (
    Timeouts,
    describe_tasks,
    log_blocking_tasks,
    signal_patch,
    wait_for_transition,
)
from kpatchctl.unload import remove_module

log = logging.getLogger(__name__)

# insmod fails with EBUSY while another patch is in transition, so it is retried.
MAX_INSERT_ATTEMPTS = 5
INSERT_RETRY_INTERVAL = 2.0


def find_module_file(context: Context, module: str) -> Path | None:
    """Return ``module`` if it is a file, else the installed file of that name."""
    path = Path(module)
    if path.is_file():
        return path
    return context.store.find(module, context.paths.kernel_release())


def insert_with_retry(context: Context, path: Path) -> None:
    for attempt in range(1, MAX_INSERT_ATTEMPTS + 1):
        try:
            context.host.loader.insert(path)
            return
        except ModuleBusyError:
            if attempt == MAX_INSERT_ATTEMPTS:
                raise
            log.warning(
                "insmod %s: device busy on attempt %d of %d, retrying in %g s",
                path,
                attempt,
                MAX_INSERT_ATTEMPTS,
                INSERT_RETRY_INTERVAL,
            )
            context.host.clock.sleep(INSERT_RETRY_INTERVAL)


def roll_back(context: Context, name: str, timeouts: Timeouts) -> str:
    """Reverse the stalled enable transition of ``name`` and return what happened."""
    log.info("rolling back patch %s", name)
    context.sysfs.write_enabled(name, False)
    if not wait_for_transition(context.sysfs, context.host.clock, name, timeouts):
        return "the rollback is still running, so check 'kpatch list' before retrying"
    remove_module(context, name, timeouts)
    return "the patch was rolled back and its module removed"


def finish_enable(context: Context, name: str, timeouts: Timeouts) -> None:
    """Wait for the enable transition of ``name``, and on timeout roll it back and raise."""
    if wait_for_transition(context.sysfs, context.host.clock, name, timeouts):
        log.info("patch %s is enabled", name)
        return
    tasks = blocking_tasks(context.paths, target_state=1)
    log_blocking_tasks(name, tasks)
    outcome = roll_back(context, name, timeouts)
    raise TransitionTimeoutError(
        f"enabling patch {name} did not finish within {timeouts.transition:g} s, blocked by "
        f"{describe_tasks(tasks)}; {outcome}; retry when those tasks are idle or with a "
        "longer --timeout"
    )


def load_patch_file(context: Context, path: Path, timeouts: Timeouts) -> None:
    """Insert the patch module at ``path`` and wait until its patch is enabled."""
    info = read_modinfo(path)
    require_livepatch(info)
    require_release(info, context.paths.kernel_release())
    context.sysfs.require_support()
    name = info.name

    state = context.sysfs.state(name)
    if state is not None and state.enabled and not state.transition:
        log.info("patch %s is already loaded and enabled", name)
        return
    if state is not None and state.enabled:
        log.info("patch %s is already loaded and still enabling", name)
        finish_enable(context, name, timeouts)
        return

    # A module whose patch was disabled stays loaded until rmmod and has to go first.
    if name in loaded_modules(context.paths):
        log.info("module %s is loaded with its patch disabled, removing it first", name)
        if not wait_for_transition(context.sysfs, context.host.clock, name, timeouts):
            raise TransitionTimeoutError(
                f"patch {name} is still disabling after {timeouts.transition:g} s; "
                "retry the load when 'kpatch list' shows it disabled"
            )
        remove_module(context, name, timeouts)

    log.info("loading patch module %s", path)
    insert_with_retry(context, path)
    if context.sysfs.state(name) is None:
        raise KpatchError(
            f"module {name} was inserted but {context.sysfs.patch_dir(name)} did not appear; "
            "check the kernel log (dmesg) for the reason"
        )
    finish_enable(context, name, timeouts)


def load_all(context: Context, timeouts: Timeouts) -> None:
    """Load every patch installed for the running kernel, in file name order."""
    if patches_disabled_at_boot(context.paths):
        log.info("kernel command line contains kpatch.enable=0, so no patch is loaded")
        return
    release = context.paths.kernel_release()
    files = context.store.installed_files(release)
    if not files:
        log.info("no patch module is installed for kernel %s", release)
        return
    for path in files:
        load_patch_file(context, path, timeouts)


def load_command(context: Context, module: str | None, timeouts: Timeouts) -> None:
    context.require_root("load")
    if module is None:
        load_all(context, timeouts)
        return
    path = find_module_file(context, module)
    if path is None:
        raise KpatchError(
            f"module file not found: {module}; pass a .ko path or the name of a patch "
            f"installed for kernel {context.paths.kernel_release()} (see 'kpatch list')"
        )
    load_patch_file(context, path, timeouts)


def signal_command(context: Context) -> None:
    """Signal the blocked tasks of every patch in transition."""
    context.require_root("signal")
    sysfs = context.sysfs
    sysfs.require_support()
    in_transition = [
        name for name in sysfs.patch_names() if (state := sysfs.state(name)) and state.transition
    ]
    if not in_transition:
        log.info("no patch is in transition")
        return
    for name in in_transition:
        signal_patch(sysfs, name)
