"""A fake livepatch kernel and real ELF module files for the kpatchctl tests."""

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kpatchctl.errors import KpatchError, ModuleBusyError
from kpatchctl.modinfo import read_modinfo

RELEASE = "6.1.0-test"
OTHER_RELEASE = "5.10.0-other"


def build_module(directory: Path, file_name: str, fields: list[str]) -> Path:
    """Compile a relocatable ELF object whose ``.modinfo`` contains ``fields``.

    Each field becomes one NUL-terminated string in ``.modinfo``, the way
    MODULE_INFO() places them in a real kernel module.
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / (file_name + ".c")
    lines = ["int livepatch_test_placeholder;"]
    for index, text in enumerate(fields):
        lines.append(
            '__attribute__((section(".modinfo"), used, aligned(1)))\n'
            f'static const char modinfo_{index}[] = "{text}";'
        )
    source.write_text("\n".join(lines) + "\n")
    target = directory / file_name
    subprocess.run(["gcc", "-c", "-o", str(target), str(source)], check=True)
    return target


def livepatch_fields(name: str, release: str = RELEASE) -> list[str]:
    return [
        "license=GPL",
        "livepatch=Y",
        "depends=",
        f"name={name}",
        f"vermagic={release} SMP preempt mod_unload ",
    ]


@dataclass
class FakeTask:
    pid: int
    tid: int
    comm: str
    blocks: bool


@dataclass
class FakeKernel:
    """A livepatch kernel simulated in a sysfs and procfs tree below ``root``.

    It implements kpatchctl's ModuleLoader and Clock. It reacts to attribute writes
    at the next clock call, which kpatch makes before each read in a wait, so a
    write to ``enabled`` starts a transition as it would in the kernel.

    ``enable_ticks`` and ``disable_ticks`` are the clock calls a transition takes.
    ``stall_enable`` and ``stall_disable`` make that transition never finish, unless
    ``finish_on_signal`` is set and kpatch writes the ``signal`` attribute.
    ``reference_ticks`` is how long the module refcnt stays 1 after disabling, and
    None keeps it forever. ``busy_inserts`` makes that many inserts fail with EBUSY,
    and ``failing_removes`` maps a module name to the number of rmmod calls that fail.
    """

    root: Path
    enable_ticks: int = 0
    disable_ticks: int = 0
    stall_enable: bool = False
    stall_disable: bool = False
    finish_on_signal: bool = False
    has_signal: bool = True
    reference_ticks: int | None = 0
    busy_inserts: int = 0
    failing_removes: dict[str, int] = field(default_factory=dict)
    now: float = 1000.0
    inserted: list[Path] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    signals: list[tuple[str, float]] = field(default_factory=list)
    tasks: list[FakeTask] = field(default_factory=list)
    pending: dict[str, int | None] = field(default_factory=dict)
    target: dict[str, int] = field(default_factory=dict)
    references: dict[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.livepatch_dir.mkdir(parents=True)
        self.sys_module_dir.mkdir(parents=True)
        (self.root / "proc/sys/kernel").mkdir(parents=True)
        (self.root / "proc/sys/kernel/osrelease").write_text(RELEASE + "\n")
        (self.root / "proc/cmdline").write_text("BOOT_IMAGE=/vmlinuz root=/dev/vda quiet\n")
        self.proc_modules.write_text("")
        self.add_task(1, 1, "systemd", blocks=False)

    @property
    def livepatch_dir(self) -> Path:
        return self.root / "sys/kernel/livepatch"

    @property
    def sys_module_dir(self) -> Path:
        return self.root / "sys/module"

    @property
    def proc_modules(self) -> Path:
        return self.root / "proc/modules"

    def add_task(self, pid: int, tid: int, comm: str, blocks: bool) -> None:
        task_dir = self.root / f"proc/{pid}/task/{tid}"
        task_dir.mkdir(parents=True)
        (task_dir / "comm").write_text(comm + "\n")
        (task_dir / "patch_state").write_text("-1\n")
        (task_dir / "stack").write_text(
            "[<0>] do_nanosleep+0x8d/0x190\n[<0>] ksys_read+0x6f/0xf0\n"
        )
        self.tasks.append(FakeTask(pid, tid, comm, blocks))

    def _set_task_states(self, target: int | None) -> None:
        """Set each task's patch_state: blocking tasks stay in the state before ``target``.

        A ``target`` of None ends the transition, which sets every patch_state to -1.
        """
        for task in self.tasks:
            if target is None:
                value = -1
            elif task.blocks:
                value = 1 - target
            else:
                value = target
            (self.root / f"proc/{task.pid}/task/{task.tid}/patch_state").write_text(f"{value}\n")

    def add_patch_dir(self, name: str, enabled: int, transition: int) -> Path:
        """Create a patch in sysfs with one patched vmlinux function."""
        directory = self.livepatch_dir / name
        directory.mkdir()
        (directory / "enabled").write_text(f"{enabled}\n")
        (directory / "transition").write_text(f"{transition}\n")
        (directory / "force").write_text("0\n")
        if self.has_signal:
            (directory / "signal").write_text("0\n")
        (directory / "vmlinux/cmdline_proc_show,1").mkdir(parents=True)
        (directory / "vmlinux/patched").write_text("1\n")
        self.target[name] = enabled
        return directory

    def add_module(self, name: str, taints: str = "OEK", refcount: int = 1) -> None:
        module_dir = self.sys_module_dir / name
        module_dir.mkdir()
        (module_dir / "refcnt").write_text(f"{refcount}\n")
        line = f"{name} 16384 {refcount} - Live 0x0000000000000000"
        if taints:
            line += f" ({taints})"
        with self.proc_modules.open("a") as stream:
            stream.write(line + "\n")

    # ModuleLoader

    def insert(self, path: Path) -> None:
        if self.busy_inserts:
            self.busy_inserts -= 1
            raise ModuleBusyError(f"insmod {path} failed: Device or resource busy")
        name = read_modinfo(path).name
        if (self.sys_module_dir / name).exists():
            raise KpatchError(f"insmod {path} failed: File exists")
        self.inserted.append(path)
        in_transition = self.stall_enable or self.enable_ticks > 0
        self.add_patch_dir(name, enabled=1, transition=int(in_transition))
        self.add_module(name)
        if in_transition:
            self.pending[name] = None if self.stall_enable else self.enable_ticks
            self._set_task_states(1)

    def remove(self, name: str) -> None:
        refcnt = self.sys_module_dir / name / "refcnt"
        if not refcnt.exists():
            raise KpatchError(f"rmmod {name} failed: Module {name} is not currently loaded")
        if self.failing_removes.get(name, 0) > 0:
            self.failing_removes[name] -= 1
            raise KpatchError(f"rmmod {name} failed: Resource temporarily unavailable")
        if refcnt.read_text().strip() != "0":
            raise KpatchError(f"rmmod {name} failed: Module {name} is in use")
        shutil.rmtree(self.sys_module_dir / name)
        lines = self.proc_modules.read_text().splitlines(keepends=True)
        self.proc_modules.write_text("".join(line for line in lines if line.split()[0] != name))
        self.removed.append(name)

    # Clock

    def monotonic(self) -> float:
        self.tick()
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.tick()

    # Simulation

    def tick(self) -> None:
        for directory in sorted(self.livepatch_dir.iterdir()):
            self._tick_patch(directory)
        self._tick_references()

    def _tick_patch(self, directory: Path) -> None:
        name = directory.name
        enabled = int((directory / "enabled").read_text())
        if enabled != self.target[name]:
            self._start_transition(directory, enabled)
            return
        if (directory / "transition").read_text().strip() != "1":
            return
        signal = directory / "signal"
        if signal.exists() and signal.read_text().strip() == "1":
            signal.write_text("0\n")
            self.signals.append((name, self.now))
            if self.finish_on_signal:
                self.pending[name] = 0
        ticks = self.pending.get(name, 0)
        if ticks is None:
            return
        if ticks > 0:
            self.pending[name] = ticks - 1
            return
        self._finish_transition(directory)

    def _start_transition(self, directory: Path, enabled: int) -> None:
        """React to kpatch writing ``enabled``: start or reverse a transition."""
        self.target[directory.name] = enabled
        (directory / "transition").write_text("1\n")
        stall = self.stall_disable if enabled == 0 else self.stall_enable
        ticks = self.disable_ticks if enabled == 0 else self.enable_ticks
        self.pending[directory.name] = None if stall else ticks
        self._set_task_states(enabled)

    def _finish_transition(self, directory: Path) -> None:
        """End a transition. A disabled patch leaves sysfs, as in Linux 5.1 and later."""
        name = directory.name
        (directory / "transition").write_text("0\n")
        self._set_task_states(None)
        self.pending.pop(name, None)
        if self.target[name] == 0:
            shutil.rmtree(directory)
            self.references[name] = self.reference_ticks

    def _tick_references(self) -> None:
        for name, ticks in list(self.references.items()):
            if ticks is None:
                continue
            if ticks > 0:
                self.references[name] = ticks - 1
                continue
            refcnt = self.sys_module_dir / name / "refcnt"
            if refcnt.exists():
                refcnt.write_text("0\n")
            del self.references[name]
