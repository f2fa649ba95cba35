"""doit variables parsed into Settings, target selection and symbol versions."""

from __future__ import annotations

import pytest

from steps.errors import BuildError
from steps.objects import select_targets
from steps.settings import check_variables, parse_settings
from steps.signing import sign_module
from steps.stages import read_check
from steps.symvers import check_versions_kept, read_versions


def settings(tmp_path, **values):
    patch = tmp_path / "fix-one.patch"
    patch.write_text("--- a/x.c\n+++ b/x.c\n")
    return parse_settings({"patch": str(patch), **values}, "src-id", "gcc 12")


def test_defaults(tmp_path):
    result = settings(tmp_path)
    assert result.module == "livepatch-fix-one"
    assert result.targets == ()
    assert result.replace is True
    assert result.signkey is None


def test_name_and_replace(tmp_path):
    result = settings(tmp_path, name="my fix!", replace="0")
    assert result.module == "livepatch-my-fix"
    assert result.replace is False


def test_bad_replace(tmp_path):
    with pytest.raises(BuildError, match="replace=yes must be 1"):
        settings(tmp_path, replace="yes")


def test_targets_normalised(tmp_path):
    result = settings(tmp_path, target="binfmt-misc.ko, vmlinux,binfmt_misc")
    assert result.targets == ("binfmt_misc", "vmlinux")


def test_bad_target(tmp_path):
    with pytest.raises(BuildError, match=r"target=fs/x is not vmlinux or a module name"):
        settings(tmp_path, target="fs/x")


def test_missing_signkey(tmp_path):
    with pytest.raises(BuildError, match="signing key .*nokey.pem not found"):
        settings(tmp_path, signkey=str(tmp_path / "nokey.pem"))


def kbuild_tree(tmp_path):
    """An O= folder with one module (two objects) as kbuild records it in .mod files."""
    build = tmp_path / "build"
    (build / "fs").mkdir(parents=True)
    (build / "fs" / "binfmt_misc.mod").write_text("fs/binfmt_misc.o\n")
    (build / "fs" / "my-mod.mod").write_text("fs/a.o fs/b.o\n")
    return build


def test_select_targets(tmp_path):
    build = kbuild_tree(tmp_path)
    objects = ["fs/a.o", "fs/b.o", "fs/binfmt_misc.o", "kernel/fork.o"]
    assert select_targets(objects, build, ()) == objects
    assert select_targets(objects, build, ("vmlinux",)) == ["kernel/fork.o"]
    assert select_targets(objects, build, ("my_mod", "binfmt_misc")) == [
        "fs/a.o",
        "fs/b.o",
        "fs/binfmt_misc.o",
    ]


def test_select_unchanged_target(tmp_path):
    build = kbuild_tree(tmp_path)
    with pytest.raises(
        BuildError,
        match="target=ext4: the patch changes nothing there; it changes binfmt_misc, vmlinux",
    ):
        select_targets(["fs/binfmt_misc.o", "kernel/fork.o"], build, ("ext4",))


def test_read_versions(tmp_path):
    cmd = tmp_path / ".x.o.cmd"
    cmd.write_text("cmd_x.o := gcc ...\n#SYMVER foo 0x1234abcd\n#SYMVER bar 0x00000001\n")
    assert read_versions(cmd) == {"foo": "0x1234abcd", "bar": "0x00000001"}
    assert read_versions(tmp_path / "missing.cmd") == {}


def test_changed_version_refused():
    check_versions_kept("x.o", {"foo": "0x1"}, {"foo": "0x1", "new": "0x2"})
    with pytest.raises(BuildError, match=r"changes the type of exported symbol foo \(x.o\)"):
        check_versions_kept("x.o", {"foo": "0x1", "bar": "0x2"}, {"foo": "0x3", "bar": "0x2"})
    with pytest.raises(BuildError, match="removes exported symbol bar"):
        check_versions_kept("x.o", {"foo": "0x1", "bar": "0x2"}, {"foo": "0x1"})


def test_no_signature_without_module_sig(tmp_path):
    (tmp_path / ".config").write_text("CONFIG_MODULES=y\n# CONFIG_MODULE_SIG is not set\n")
    module = tmp_path / "m.ko"
    module.write_bytes(b"\x7fELF")
    assert sign_module(module, tmp_path, None) is False
    assert module.read_bytes() == b"\x7fELF"
    with pytest.raises(
        BuildError, match="signkey= was given, but the kernel has no CONFIG_MODULE_SIG"
    ):
        sign_module(module, tmp_path, tmp_path / "key.pem")


def test_missing_kernel_key(tmp_path):
    (tmp_path / ".config").write_text(
        'CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_KEY="certs/signing_key.pem"\n'
    )
    with pytest.raises(BuildError, match="pass signkey=FILE"):
        sign_module(tmp_path / "m.ko", tmp_path, None)


@pytest.mark.parametrize("jobs", ["-1", "-3"])
def test_jobs_below_one(tmp_path, jobs):
    with pytest.raises(BuildError, match=f"jobs={jobs} is invalid; pass a number of 1 or more"):
        settings(tmp_path, jobs=jobs)


def test_unknown_variable():
    check_variables(["patch", "target", "verbose"])
    with pytest.raises(
        BuildError, match="unknown variable Replace, tagret; the variables are patch="
    ):
        check_variables(["patch", "tagret", "Replace"])


def test_signkey_without_certificate(tmp_path):
    (tmp_path / ".config").write_text('CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_HASH="sha256"\n')
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(BuildError, match="must be a PEM file with a private key and its X.509"):
        sign_module(tmp_path / "m.ko", tmp_path, key)


def test_select_targets_logs_left_out(tmp_path, caplog):
    build = kbuild_tree(tmp_path)
    with caplog.at_level("INFO", logger="klpbuild.objects"):
        select_targets(["fs/binfmt_misc.o", "kernel/fork.o"], build, ("binfmt_misc",))
    assert "target= leaves out kernel/fork.o" in caplog.text


def test_check_file_keys(tmp_path):
    patch = tmp_path / "fix.patch"
    check = tmp_path / "fix.check"
    check.write_text("# comment\nsetup: mount x\ncheck: grep -q a:b /f\n")
    assert read_check(patch) == {
        "setup": "mount x",
        "check": "grep -q a:b /f",
        "show": "grep -q a:b /f",
    }
    check.write_text("check: true\nchek: false\n")
    with pytest.raises(BuildError, match=r"fix.check:2: expected one of setup:, check:, show:"):
        read_check(patch)
