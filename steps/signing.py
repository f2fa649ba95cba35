"""Module signatures for kernels built with CONFIG_MODULE_SIG.

The finished module is signed with the kernel tree's own scripts/sign-file,
after finalisation, because the signature covers the final bytes. The key
is signkey= (a PEM file containing the private key and its certificate) or the
key that the kernel build generated and built into its keyring.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .commands import run
from .config import parse_config
from .errors import BuildError

log = logging.getLogger("klpbuild.signing")


def sign_module(module: Path, build_dir: Path, signkey: Path | None) -> bool:
    """Sign MODULE when the kernel checks signatures; return whether it was signed."""
    options = parse_config((build_dir / ".config").read_text())
    if options.get("CONFIG_MODULE_SIG") != "y":
        if signkey is not None:
            raise BuildError("signkey= was given, but the kernel has no CONFIG_MODULE_SIG")
        return False
    if signkey is not None:
        text = signkey.read_text(errors="replace")
        if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE-----" not in text:
            raise BuildError(
                f"signkey={signkey} must be a PEM file with a private key and its X.509 "
                "certificate (cat key.pem cert.pem > signkey.pem)"
            )
        key = certificate = signkey
    else:
        key = build_dir / options.get("CONFIG_MODULE_SIG_KEY", "certs/signing_key.pem").strip('"')
        certificate = build_dir / "certs" / "signing_key.x509"
        if not key.is_file() or not certificate.is_file():
            raise BuildError(
                f"the kernel checks module signatures but {key} is missing; "
                "pass signkey=FILE (private key and certificate in one PEM file)"
            )
    sign_file = build_dir / "scripts" / "sign-file"
    if not sign_file.is_file():
        raise BuildError(f"{sign_file} not found; the kernel build is incomplete")
    hash_name = options.get("CONFIG_MODULE_SIG_HASH", "sha256").strip('"')
    run(
        [str(sign_file), hash_name, str(key), str(certificate), str(module)],
        what=f"signing {module.name}",
    )
    log.info("signed %s with %s (%s)", module.name, key, hash_name)
    return True
