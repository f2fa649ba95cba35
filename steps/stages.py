"""The actions dodo.py runs: each unpacks Settings and calls one stage."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from .config import ConfigRequest, make_config
from .errors import BuildError
from .kernel import COMPARISON_KCFLAGS, KernelBuild, build_kernel
from .reporting import stage
from .settings import Settings
from .source import SourceRequest, prepare_source
from .tree import tree_locked

log = logging.getLogger("klpbuild.stages")


def _tree(settings: Settings):
    return prepare_source(SourceRequest(tree=settings.src)).tree


@stage
def source(settings: Settings) -> None:
    _tree(settings)


@stage
def config(settings: Settings) -> None:
    # Under the cache lock: concurrent runs share the scratch folder and the .config
    # files, and a .config that changes even briefly makes kbuild rebuild everything.
    with tree_locked():
        text = make_config(
            ConfigRequest(
                tree=_tree(settings),
                scratch=settings.build / "config",
                **({"config": settings.config} if settings.config else {}),
            )
        )
        for build_dir in (settings.run_dir, settings.cmp_dir):
            build_dir.mkdir(parents=True, exist_ok=True)
            target = build_dir / ".config"
            if not target.exists() or target.read_text() != text:
                temporary = target.with_name(".config.new")
                temporary.write_text(text)
                temporary.replace(target)
        (settings.build / "key.txt").write_text(
            f"source: {settings.source_id}\nconfig: {settings.config_input}\ncompiler: {settings.compiler}\n"
        )


def _kernel_build(settings: Settings, build_dir, targets, kcflags="") -> KernelBuild:
    return KernelBuild(
        tree=_tree(settings),
        build_dir=build_dir,
        config_text=(build_dir / ".config").read_text(),
        targets=targets,
        kcflags=kcflags,
        jobs=settings.jobs,
    )


@stage
def kernel(settings: Settings) -> None:
    build_kernel(_kernel_build(settings, settings.run_dir, ("bzImage", "modules")))


@stage
def comparison_kernel(settings: Settings) -> None:
    build_kernel(
        _kernel_build(settings, settings.cmp_dir, ("vmlinux", "modules"), COMPARISON_KCFLAGS)
    )


@stage
def struct_sizes(settings: Settings) -> None:
    from elfdiff.dwarf import read_struct_sizes

    sizes = read_struct_sizes(settings.parent_vmlinux)
    if "bug_entry" not in sizes:
        raise BuildError(
            f"no struct bug_entry in the DWARF of {settings.parent_vmlinux}; build it with CONFIG_DEBUG_INFO"
        )
    settings.struct_sizes.write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")


@stage
def patched(settings: Settings) -> None:
    from .patched import PatchedBuild, build_patched

    settings.work.mkdir(parents=True, exist_ok=True)
    result = build_patched(
        PatchedBuild(
            tree=_tree(settings),
            cmp_dir=settings.cmp_dir,
            patches=settings.patches,
            work=settings.work,
            jobs=settings.jobs,
            targets=settings.targets,
        )
    )
    result.write(settings.work / "objects.json")


def object_diffs(settings: Settings):
    """Return one ObjectDiff per object the last patched build recompiled."""
    from .diffing import ObjectDiff
    from .objects import module_parents, parent_of
    from .patched import PatchedResult

    listing = settings.work / "objects.json"
    if not listing.exists():
        return []
    parents = module_parents(settings.cmp_dir)
    requests = []
    for obj in PatchedResult.read(listing).objects:
        parent_name, module = parent_of(obj, parents)
        symtab = settings.parent_vmlinux if module is None else settings.run_dir / f"{module}.ko"
        requests.append(
            ObjectDiff(
                obj=obj,
                work=settings.work,
                parent_name=parent_name,
                parent_symtab=symtab,
                module_symvers=settings.run_dir / "Module.symvers",
                patch_module=settings.module,
                struct_sizes=settings.struct_sizes,
            )
        )
    return requests


@stage
def diff(request) -> None:
    from .diffing import diff_object

    diff_object(request)


@stage
def link(settings: Settings) -> None:
    from .diffing import link_diffs

    link_diffs(
        [r.summary for r in object_diffs(settings)], settings.work, settings.work / "patch.o"
    )


def template_files():
    from .module import KMOD, TEMPLATE_FILES

    return [KMOD / name for name in TEMPLATE_FILES]


@stage
def module(settings: Settings) -> None:
    from .module import ModuleBuild, build_module

    build_module(
        ModuleBuild(
            kernel_build=settings.run_dir,
            linked=settings.work / "patch.o",
            folder=settings.work / "module",
            name=settings.module,
            replace=settings.replace,
        )
    )


@stage
def finalize(settings: Settings) -> None:
    from .module import finalize as finalize_module
    from .signing import sign_module

    # The module reaches out= only whole: finalised and, where the kernel wants it, signed.
    finished = settings.work / f"{settings.module}.ko"
    try:
        settings.module_path.unlink(missing_ok=True)
        finalize_module(
            settings.work / "module" / f"{settings.module}.ko",
            finished,
            settings.run_dir / "Module.symvers",
        )
        sign_module(finished, settings.run_dir, settings.signkey)
    except OSError as error:
        raise BuildError(f"cannot finalise {finished}: {error.strerror}") from None
    if finished.resolve() == settings.module_path.resolve():
        return
    # Copy through a temporary file, so that out= never contains a partly written module.
    temporary = settings.module_path.with_name(f".{settings.module_path.name}.tmp")
    try:
        shutil.copy2(finished, temporary)
        temporary.replace(settings.module_path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise BuildError(f"cannot write {settings.module_path}: {error.strerror}") from None
    log.info("wrote %s", settings.module_path)


CHECK_KEYS = ("setup", "check", "show")


def read_check(patch: Path) -> dict[str, str]:
    """Read the check, show and setup commands from the .check file beside PATCH."""
    check_file = patch.with_suffix(".check")
    if not check_file.is_file():
        raise BuildError(
            f"{check_file} not found; the VM check needs a check: command for this patch"
        )
    commands = {}
    for number, line in enumerate(check_file.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon or key.strip() not in CHECK_KEYS:
            raise BuildError(
                f"{check_file}:{number}: expected one of {', '.join(k + ':' for k in CHECK_KEYS)}"
                " followed by a shell command"
            )
        commands[key.strip()] = value.strip()
    if "check" not in commands:
        raise BuildError(f"{check_file} has no check: line")
    commands.setdefault("show", commands["check"])
    commands.setdefault("setup", "true")
    return commands


def changed_modules(settings: Settings) -> tuple[Path, ...]:
    """Return the modules (.ko of the bootable build) whose code the patch changes."""
    modules = {
        request.parent_symtab
        for request in object_diffs(settings)
        if request.parent_name != "vmlinux"
        and request.summary.is_file()
        and json.loads(request.summary.read_text())["changed_functions"]
    }
    return tuple(sorted(modules))


@stage
def vm(settings: Settings) -> None:
    from .vm import VmCheck, run_vm_check

    if not settings.patches:
        raise BuildError("no patch given; pass patch=FILE so the VM check finds FILE's .check")
    commands = read_check(settings.patches[0])
    passed, verdict = run_vm_check(
        VmCheck(
            kernel_image=settings.run_dir / "arch/x86/boot/bzImage",
            module=settings.module_path,
            check=commands["check"],
            show=commands["show"],
            setup=commands["setup"],
            parents=changed_modules(settings),
            work=settings.work,
        )
    )
    if passed:
        print("PASS")
    else:
        raise BuildError(f"VM check failed: {verdict}")
