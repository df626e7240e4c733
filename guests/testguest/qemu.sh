# Runs out/testguest.bin on bare QEMU and checks its result lines. Source it after scripts/lib.sh.
# shellcheck shell=bash

# The checks every run must PASS (see src/main.rs); anything else is a failure.
TG_CHECKS=(smccc-unknown-hvc smccc-unknown-smc el2-sysreg-undef abort-below-ram abort-past-ram abort-4gib
  abort-device-hole iabort-past-ram mmio-ldp-gicd psci-version psci-features psci-cpu-on psci-invalid-mpidr gic-init wfi-timer-wakeup bench)

# Deterministic guest time (docs: DESIGN.md): counters repeat from run to run.
TG_ICOUNT=(-icount shift=0,sleep=off -rtc base=2020-01-01T00:00:00,clock=vm)

# tg_qemu GIC VIRT LOG [SMP]: boots the guest on `-M virt` with gic-version=GIC,
# virtualization=VIRT (on: entered at EL2, the guest drops to EL1 itself), SMP vCPUs (default 2),
# deterministic timing; serial output to LOG, QEMU's own messages to LOG.err. Returns QEMU's exit
# status (0 after PSCI SYSTEM_OFF, 124 on timeout).
tg_qemu() {
  local gic=$1 virt=$2 log=$3 smp=${4:-2}
  timeout 60 qemu-system-aarch64 \
    -M "virt,gic-version=$gic,virtualization=$virt,dtb-randomness=off" "${TG_ICOUNT[@]}" \
    -cpu cortex-a57 -smp "$smp" -m 512 -nographic -nic none -monitor none -serial "file:$log" \
    -kernel "$OUT/testguest.bin" </dev/null 2>"$log.err"
}

# tg_minos GIC LOG [scripts/run options...]: boots the guest as VM0 under the hypervisor on
# QEMU virt with gic-version=GIC, 2 vCPUs, QEMU loading the files itself (--direct) unless the
# options say otherwise; console (hypervisor and guest) to LOG, the rest to LOG.err.
tg_minos() {
  local gic=$1 log=$2 board=qemu-virt
  shift 2
  [ "$gic" = 2 ] && board=qemu-virt-gicv2
  "$ROOT/scripts/run" --board "$board" --smp 2 --mem 512M --timeout 60 \
    --vm0-kernel "$OUT/testguest.bin" "$@" </dev/null >"$log" 2>"$log.err"
}

# tg_verify LOG RC LABEL [CHECK...]: every check in TG_CHECKS passed (the CHECKs given may be
# SKIPped instead), none failed, the tally is complete and the guest powered off through
# SYSTEM_OFF. Prints what went wrong.
tg_verify() {
  local log=$1 rc=$2 label=$3 ok=0 c skipped=0
  shift 3
  if [ "$rc" != 0 ]; then
    echo "$label: exit status $rc (124: timeout, the guest never powered off)"
    cat "$log.err" 2>/dev/null || true
    ok=1
  fi
  for c in "${TG_CHECKS[@]}"; do
    if grep -q "^TESTGUEST: $c: PASS" "$log"; then
      continue
    elif [[ " $* " == *" $c "* ]] && grep -q "^TESTGUEST: $c: SKIP" "$log"; then
      skipped=$((skipped + 1))
    else
      echo "$label: check $c did not pass: $(grep "^TESTGUEST: $c:" "$log" || echo 'no line')"
      ok=1
    fi
  done
  if grep -E "^TESTGUEST: .*(FAIL|FATAL)" "$log"; then
    echo "$label: failures above"
    ok=1
  fi
  local n=$((${#TG_CHECKS[@]} - skipped))
  if ! grep -q "^TESTGUEST: done $n/$n" "$log"; then
    echo "$label: expected 'TESTGUEST: done $n/$n', got: $(grep '^TESTGUEST: done' "$log" || echo 'no done line')"
    ok=1
  fi
  return $ok
}
