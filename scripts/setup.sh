#!/usr/bin/env bash
# Install what the builder needs on Debian 12 (as root) and a virtual
# environment in .venv with the project and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    linux-source-6.1 gcc make bc bison flex libelf-dev libssl-dev openssl dwarves
    xz-utils patch cpio kmod busybox-static qemu-system-x86 python3-venv
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[test]'
