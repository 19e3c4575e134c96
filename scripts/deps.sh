#!/usr/bin/env bash
# Checks that every Debian package ferry needs to build and test is installed.
# As root, installs the missing ones (apt-get update once, then install);
# otherwise prints the exact apt-get line and exits non-zero.
set -eu

packages=(
  build-essential pkg-config
  libssl-dev libedit-dev libcrypt-dev libseccomp-dev
  python3 python3-pyftpdlib python3-openssl
  curl lftp wget tnftp ncftp busybox inetutils-ftp openssl iproute2 strace valgrind cppcheck
)
# `deps.sh fuzz` (make fuzz): libFuzzer comes with clang's runtime.
# make test does not need these: it replays the fuzz corpus with gcc.
if [ "${1:-}" = fuzz ]; then
  packages=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages; run as root:" >&2
  echo "  apt-get update && $line" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
$line >&2
