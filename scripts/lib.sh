# Common paths and helpers for the project's scripts. Source it; do not run it.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${MINOS_OUT:-$ROOT/out}
CACHE=${MINOS_CACHE:-/var/cache/minos-rs}
KERNEL=$CACHE/kernel/Image
KMODULES=$CACHE/kernel/modules
KDTBS=$CACHE/kernel/dtbs
BUSYBOX=$CACHE/pkg/busybox-static/bin/busybox
UBOOT_QEMU=/usr/lib/u-boot/qemu_arm64/u-boot.bin
UBOOT_RPI3=$CACHE/pkg/u-boot-rpi/usr/lib/u-boot/rpi_3/u-boot.bin
mkdir -p "$OUT"

die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
