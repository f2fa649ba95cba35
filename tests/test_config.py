"""Config checks and module names."""

from __future__ import annotations

import pytest

from steps.config import DEFAULT_FRAGMENT, REQUIRED, check_config
from steps.errors import BuildError
from steps.settings import module_name


def good_config() -> str:
    lines = [f"{option}=y" for option in REQUIRED] + ["CONFIG_DYNAMIC_FTRACE_WITH_REGS=y"]
    return "\n".join(lines) + "\n"


def test_good_config_passes():
    check_config(good_config(), "test")


@pytest.mark.parametrize("option", sorted(REQUIRED))
def test_missing_option_named(option):
    text = good_config().replace(f"{option}=y", f"# {option} is not set")
    with pytest.raises(BuildError, match=option):
        check_config(text, "test")


def test_ibt_rejected():
    with pytest.raises(BuildError, match="CONFIG_X86_KERNEL_IBT"):
        check_config(good_config() + "CONFIG_X86_KERNEL_IBT=y\n", "test")


def test_fragment_sets_required_options():
    text = DEFAULT_FRAGMENT.read_text()
    for option in REQUIRED:
        assert f"{option}=y" in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meminfo-string", "livepatch-meminfo-string"),
        ("fix CVE 2024/1", "livepatch-fix-CVE-2024-1"),
        ("livepatch-x", "livepatch-x"),
        ("a" * 80, "livepatch-" + "a" * 45),
    ],
)
def test_module_name(name, expected):
    assert module_name(name) == expected
