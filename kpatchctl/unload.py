"""The unload subcommand: disable patches and remove their modules."""

import logging

from kpatchctl.context import Context
from kpatchctl.errors import KpatchError, TransitionTimeoutError
from kpatchctl.modinfo import module_name_from_file_name
from kpatchctl.procfs import blocking_tasks, loaded_modules
from kpatchctl.transition import (
    Timeouts,
    describe_tasks,
    log_blocking_tasks,
    wait_for_transition,
    wait_for_zero_refcount,
)

log = logging.getLogger(__name__)


def loaded_patch_names(context: Context) -> list[str]:
    """Return patches in sysfs and loaded livepatch modules whose patch is gone."""
    names = set(context.sysfs.patch_names())
    for module in loaded_modules(context.paths).values():
        if module.is_livepatch:
            names.add(module.name)
    return sorted(names)


def remove_module(context: Context, name: str, timeouts: Timeouts) -> None:
    """Wait until the refcnt of module ``name`` is 0, then rmmod it."""
    refcount = wait_for_zero_refcount(context.sysfs, context.host.clock, name, timeouts.transition)
    if refcount:
        raise KpatchError(
            f"module {name} still has refcnt {refcount} after {timeouts.transition:g} s; "
            f"retry 'kpatch unload {name}' later"
        )
    if name not in loaded_modules(context.paths):
        return
    log.info("removing module %s", name)
    context.host.loader.remove(name)


def unload_patch(context: Context, name: str, timeouts: Timeouts) -> None:
    """Disable patch ``name``, wait for the transition, then remove its module."""
    sysfs = context.sysfs
    state = sysfs.state(name)
    module = loaded_modules(context.paths).get(name)
    if state is None and module is None:
        raise KpatchError(
            f"patch module {name} is not loaded; run 'kpatch list' to see the loaded patches"
        )
    if state is None and not module.is_livepatch:
        raise KpatchError(f"module {name} is not a livepatch module; remove it with rmmod")

    if state is not None and state.enabled:
        log.info("disabling patch %s", name)
        sysfs.write_enabled(name, False)
    if not wait_for_transition(sysfs, context.host.clock, name, timeouts):
        tasks = blocking_tasks(context.paths, target_state=0)
        log_blocking_tasks(name, tasks)
        raise TransitionTimeoutError(
            f"disabling patch {name} did not finish within {timeouts.transition:g} s, "
            f"blocked by {describe_tasks(tasks)}; the patch stays in transition, so run "
            f"'kpatch signal' or retry 'kpatch unload {name}' later"
        )
    remove_module(context, name, timeouts)
    log.info("unloaded patch %s", name)


def unload_all(context: Context, timeouts: Timeouts) -> None:
    """Unload every loaded patch module.

    Kernels before 5.1 disable stacked patches only from the top, so patches that
    fail are retried while each pass unloads at least one. A timed-out transition is
    not retried, since it would only wait again.
    """
    pending = loaded_patch_names(context)
    if not pending:
        log.info("no livepatch module is loaded")
        return
    failures: dict[str, KpatchError] = {}
    while pending:
        for name in pending:
            try:
                unload_patch(context, name, timeouts)
                failures.pop(name, None)
            except KpatchError as error:
                failures[name] = error
        if all(name in failures for name in pending):
            break
        pending = [
            name
            for name in pending
            if name in failures and not isinstance(failures[name], TransitionTimeoutError)
        ]
    _raise_unload_failures(failures)


def _raise_unload_failures(failures: dict[str, KpatchError]) -> None:
    if not failures:
        return
    for name, error in failures.items():
        log.warning("could not unload patch %s: %s", name, error)
    timed_out = any(isinstance(error, TransitionTimeoutError) for error in failures.values())
    error_class = TransitionTimeoutError if timed_out else KpatchError
    raise error_class(
        f"{len(failures)} of the loaded patch modules could not be unloaded "
        f"({', '.join(sorted(failures))}); see the warnings above, then run 'kpatch list'"
    )


def unload_command(context: Context, module: str | None, timeouts: Timeouts) -> None:
    context.require_root("unload")
    context.sysfs.require_support()
    if module is None:
        unload_all(context, timeouts)
        return
    unload_patch(context, module_name_from_file_name(module), timeouts)
