#!/usr/bin/env bash
# Installs what xlb needs on a fresh Debian 12 machine and builds it: apt
# packages, npm dependencies, the BPF objects, the native addon and the
# TypeScript. Idempotent and quick when everything is already there; `npm start`
# and `npm test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "xlb setup: run as root (BPF, network namespaces and apt need it)" >&2
  exit 1
fi

# Build tools, libbpf, and what the lab and the tests drive.
APT_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config cmake make g++
  iproute2 ethtool curl bpftool iputils-ping python3
  openvswitch-switch ovn-central ovn-host nginx-light iperf3 wrk nftables)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "xlb setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies (only when the lock file changed since the last install).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "xlb setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# bpffs for the pins.
if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
fi

make -s -C bpf
if [ ! -f build/native/Release/xlb.node ] || [ -n "$(find native -newer build/native/Release/xlb.node -type f | head -1)" ] \
  || [ bpf/xlb_shared.h -nt build/native/Release/xlb.node ]; then
  echo "xlb setup: building the native addon"
  npx cmake-js compile --directory native --out build/native >/dev/null
fi
npx tsc -p tsconfig.json
