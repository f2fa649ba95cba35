"""The actions dodo.py runs: each unpacks Settings and calls one stage."""

from __future__ import annotations

import json

from .config import ConfigRequest, make_config
from .errors import BuildError
from .kernel import COMPARISON_KCFLAGS, KernelBuild, build_kernel
from .reporting import stage
from .settings import Settings
from .source import SourceRequest, prepare_source


def _tree(settings: Settings):
    return prepare_source(SourceRequest(tree=settings.src)).tree


@stage
def source(settings: Settings) -> None:
    prepare_source(SourceRequest(tree=settings.src))


@stage
def config(settings: Settings) -> None:
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
            target.write_text(text)
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
    build_kernel(_kernel_build(settings, settings.cmp_dir, ("vmlinux", "modules"), COMPARISON_KCFLAGS))


@stage
def struct_sizes(settings: Settings) -> None:
    from elfdiff.dwarf import read_struct_sizes

    sizes = read_struct_sizes(settings.parent_vmlinux)
    if "bug_entry" not in sizes:
        raise BuildError(f"no struct bug_entry in the DWARF of {settings.parent_vmlinux}; build it with CONFIG_DEBUG_INFO")
    settings.struct_sizes.write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")
