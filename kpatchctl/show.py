"""The list, info and version subcommands, which only read."""

from importlib import metadata
from pathlib import Path

from kpatchctl.context import Context
from kpatchctl.errors import KpatchError
from kpatchctl.modinfo import module_name_from_file_name, read_modinfo
from kpatchctl.procfs import blocking_tasks
from kpatchctl.unload import loaded_patch_names

INDENT = "  "


def _patch_lines(context: Context, name: str) -> list[str]:
    state = context.sysfs.state(name)
    # A livepatch module without a sysfs patch is loaded with its patch disabled.
    label = state.label if state is not None else "disabled"
    lines = [f"{INDENT}{name} [{label}]"]
    for function in context.sysfs.patched_functions(name):
        lines.append(f"{INDENT * 2}{function.object_name}: {function.function},{function.sympos}")
    return lines


def loaded_lines(context: Context) -> list[str]:
    lines = ["Loaded patch modules:"]
    if not context.sysfs.has_support():
        return [*lines, f"{INDENT}(kernel has no livepatch support)"]
    names = loaded_patch_names(context)
    for name in names:
        lines.extend(_patch_lines(context, name))
    if not names:
        lines.append(f"{INDENT}(none)")
    return lines


def blocked_lines(context: Context) -> list[str]:
    """List the tasks that block a running transition, if there is one."""
    lines = []
    for name in context.sysfs.patch_names():
        state = context.sysfs.state(name)
        if state is None or not state.transition:
            continue
        lines.append(f"Tasks blocking the transition of {name}:")
        for task in blocking_tasks(context.paths, target_state=int(state.enabled)):
            lines.append(f"{INDENT}{task.tid} {task.comm} (patch_state {task.patch_state})")
    return lines


def installed_lines(context: Context) -> list[str]:
    lines = ["Installed patch modules:"]
    running = context.paths.kernel_release()
    installed = context.store.installed()
    for release, files in installed.items():
        suffix = " (running)" if release == running else ""
        lines.append(f"{INDENT}{release}{suffix}:")
        lines.extend(f"{INDENT * 2}{path.name}" for path in files)
    if not installed:
        lines.append(f"{INDENT}(none)")
    return lines


def list_command(context: Context) -> None:
    lines = [*loaded_lines(context), *blocked_lines(context), *installed_lines(context)]
    print("\n".join(lines))


def _field_line(key: str, value: str) -> str:
    return f"{key + ':':<16}{value}"


def live_lines(context: Context, name: str) -> list[str]:
    """Describe module ``name`` as loaded in the kernel, or return [] if it is not loaded."""
    if name not in loaded_patch_names(context):
        return []
    state = context.sysfs.state(name)
    lines = [_field_line("state", state.label if state is not None else "disabled")]
    refcount = context.sysfs.refcount(name)
    if refcount is not None:
        lines.append(_field_line("refcnt", str(refcount)))
    for function in context.sysfs.patched_functions(name):
        patched = f"{function.object_name} {function.function},{function.sympos}"
        lines.append(_field_line("patched", patched))
    return lines


def info_command(context: Context, module: str, release: str | None = None) -> None:
    """Print the modinfo fields of a module file, plus its state if it is loaded.

    RELEASE picks the kernel whose installed patches are searched (default: the running one).
    """
    release = release or context.paths.kernel_release()
    path = Path(module) if Path(module).is_file() else context.store.find(module, release)
    lines = []
    name = module_name_from_file_name(module)
    if path is not None:
        info = read_modinfo(path)
        name = info.name
        lines.append(_field_line("filename", str(path.resolve())))
        lines.extend(_field_line(key, value) for key, value in info.fields)
    lines.extend(live_lines(context, name))
    if not lines:
        raise KpatchError(
            f"module not found: {module} is not a file, not installed for kernel "
            f"{release} and not loaded; "
            "run 'kpatch list' to see the installed and loaded patches"
        )
    print("\n".join(lines))


def version_command() -> None:
    try:
        version = metadata.version("klpbuild")
    except metadata.PackageNotFoundError:
        version = "unknown (the klpbuild package is not installed)"
    print(f"kpatch {version}")
