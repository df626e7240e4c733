//! One list-register representation and its two hardware encodings.
//!
//! The model always thinks in [`Lr`]; only the last step (writing an `ICH_LR<n>_EL2` or a
//! `GICH_LR<n>`) knows the bit layout, so the flush/sync logic is shared between GICv2 and
//! GICv3 and the two encoders are tested against the architecture's field positions.

/// The state field of a list register (same two-bit values in both GIC versions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LrState {
    #[default]
    Invalid,
    Pending,
    Active,
    PendingActive,
}

impl LrState {
    pub fn new(pending: bool, active: bool) -> Self {
        match (pending, active) {
            (false, false) => LrState::Invalid,
            (true, false) => LrState::Pending,
            (false, true) => LrState::Active,
            (true, true) => LrState::PendingActive,
        }
    }
    fn bits(self) -> u64 {
        match self {
            LrState::Invalid => 0,
            LrState::Pending => 1,
            LrState::Active => 2,
            LrState::PendingActive => 3,
        }
    }
    fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }
    pub fn pending(self) -> bool {
        matches!(self, LrState::Pending | LrState::PendingActive)
    }
    pub fn active(self) -> bool {
        matches!(self, LrState::Active | LrState::PendingActive)
    }
}

/// A list register, independent of the GIC version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Lr {
    pub vintid: u32,
    /// Physical INTID the guest's deactivation is forwarded to (the HW bit).
    pub pintid: Option<u32>,
    pub priority: u8,
    pub group1: bool,
    pub state: LrState,
    /// GICv2 only: the CPU that sent this SGI (GICH_LR.CPUID); ignored by the v3 encoder.
    pub source: u8,
    /// Ask for a maintenance interrupt when the guest EOIs it (only without HW).
    pub eoi_maint: bool,
}

// ICH_LR<n>_EL2 field positions (GICv3 architecture, ICH_LR<n>_EL2).
const V3_PINTID_SHIFT: u32 = 32;
const V3_PINTID_MASK: u64 = 0x1fff;
const V3_EOI: u64 = 1 << 41;
const V3_PRIO_SHIFT: u32 = 48;
const V3_GROUP: u64 = 1 << 60;
const V3_HW: u64 = 1 << 61;
const V3_STATE_SHIFT: u32 = 62;

/// Encodes `lr` as an `ICH_LR<n>_EL2` value.
pub fn encode_v3(lr: &Lr) -> u64 {
    let mut v = u64::from(lr.vintid);
    match lr.pintid {
        Some(p) => v |= V3_HW | ((u64::from(p) & V3_PINTID_MASK) << V3_PINTID_SHIFT),
        None if lr.eoi_maint => v |= V3_EOI,
        None => {}
    }
    v |= u64::from(lr.priority) << V3_PRIO_SHIFT;
    if lr.group1 {
        v |= V3_GROUP;
    }
    v | (lr.state.bits() << V3_STATE_SHIFT)
}

/// Decodes an `ICH_LR<n>_EL2` value.
pub fn decode_v3(v: u64) -> Lr {
    let hw = v & V3_HW != 0;
    Lr {
        vintid: v as u32,
        pintid: hw.then_some(((v >> V3_PINTID_SHIFT) & V3_PINTID_MASK) as u32),
        priority: (v >> V3_PRIO_SHIFT) as u8,
        group1: v & V3_GROUP != 0,
        state: LrState::from_bits(v >> V3_STATE_SHIFT),
        source: 0,
        eoi_maint: !hw && v & V3_EOI != 0,
    }
}

// GICH_LR<n> field positions (GICv2 architecture, GICH_LRn).
const V2_VID_MASK: u64 = 0x3ff;
const V2_PID_SHIFT: u32 = 10;
const V2_PID_MASK: u64 = 0x3ff;
const V2_CPUID_MASK: u64 = 0x7;
const V2_EOI: u64 = 1 << 19;
const V2_PRIO_SHIFT: u32 = 23;
const V2_STATE_SHIFT: u32 = 28;
const V2_GRP1: u64 = 1 << 30;
const V2_HW: u64 = 1 << 31;

/// Encodes `lr` as a `GICH_LR<n>` value. GICv2 keeps only the top five priority bits.
pub fn encode_v2(lr: &Lr) -> u32 {
    let mut v = u64::from(lr.vintid) & V2_VID_MASK;
    match lr.pintid {
        Some(p) => v |= V2_HW | ((u64::from(p) & V2_PID_MASK) << V2_PID_SHIFT),
        None => {
            // CPUID is meaningful for SGIs only; it must be zero otherwise.
            if lr.vintid < 16 {
                v |= (u64::from(lr.source) & V2_CPUID_MASK) << V2_PID_SHIFT;
            }
            if lr.eoi_maint {
                v |= V2_EOI;
            }
        }
    }
    v |= u64::from(lr.priority >> 3) << V2_PRIO_SHIFT;
    if lr.group1 {
        v |= V2_GRP1;
    }
    (v | (lr.state.bits() << V2_STATE_SHIFT)) as u32
}

/// Decodes a `GICH_LR<n>` value.
pub fn decode_v2(v: u32) -> Lr {
    let v = u64::from(v);
    let hw = v & V2_HW != 0;
    let pid = (v >> V2_PID_SHIFT) & V2_PID_MASK;
    let vintid = (v & V2_VID_MASK) as u32;
    Lr {
        vintid,
        pintid: hw.then_some(pid as u32),
        priority: (((v >> V2_PRIO_SHIFT) & 0x1f) << 3) as u8,
        group1: v & V2_GRP1 != 0,
        state: LrState::from_bits(v >> V2_STATE_SHIFT),
        source: if !hw && vintid < 16 {
            (pid & V2_CPUID_MASK) as u8
        } else {
            0
        },
        eoi_maint: !hw && v & V2_EOI != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_hw_timer_layout() {
        // Virtual timer PPI 27 linked to physical 27, priority 0xa0, group 1, pending.
        let lr = Lr {
            vintid: 27,
            pintid: Some(27),
            priority: 0xa0,
            group1: true,
            state: LrState::Pending,
            ..Lr::default()
        };
        let v = encode_v3(&lr);
        assert_eq!(
            v,
            (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (27 << 32) | 27
        );
        assert_eq!(decode_v3(v), lr);
    }

    #[test]
    fn v3_eoi_bit_only_without_hw() {
        let mut lr = Lr {
            vintid: 40,
            eoi_maint: true,
            state: LrState::Active,
            ..Lr::default()
        };
        assert_eq!(encode_v3(&lr), (2 << 62) | (1 << 41) | 40);
        lr.pintid = Some(0x1234 & 0x1fff);
        let v = encode_v3(&lr);
        assert_eq!(v & (1 << 61), 1 << 61);
        assert_eq!((v >> 32) & 0x1fff, 0x1234);
        assert!(!decode_v3(v).eoi_maint);
    }

    #[test]
    fn v3_roundtrip_states() {
        for (p, a) in [(false, false), (true, false), (false, true), (true, true)] {
            let lr = Lr {
                vintid: 1019,
                state: LrState::new(p, a),
                ..Lr::default()
            };
            let d = decode_v3(encode_v3(&lr));
            assert_eq!((d.state.pending(), d.state.active()), (p, a));
        }
    }

    #[test]
    fn v2_sgi_carries_source_cpu() {
        let lr = Lr {
            vintid: 3,
            priority: 0x80,
            source: 5,
            state: LrState::Pending,
            ..Lr::default()
        };
        let v = encode_v2(&lr);
        assert_eq!(v, (1 << 28) | (0x10 << 23) | (5 << 10) | 3);
        assert_eq!(decode_v2(v), lr);
    }

    #[test]
    fn v2_hw_spi_layout_and_priority_truncation() {
        let lr = Lr {
            vintid: 48,
            pintid: Some(79),
            priority: 0xa7, // low three bits are not kept by GICv2
            group1: true,
            state: LrState::Pending,
            source: 3, // must be ignored: not an SGI and HW
            ..Lr::default()
        };
        let v = encode_v2(&lr);
        assert_eq!(
            v,
            (1 << 31) | (1 << 30) | (1 << 28) | (0x14 << 23) | (79 << 10) | 48
        );
        let d = decode_v2(v);
        assert_eq!(d.pintid, Some(79));
        assert_eq!(d.priority, 0xa0);
        assert_eq!(d.source, 0);
    }

    #[test]
    fn v2_cpuid_zero_for_non_sgi_and_eoi_bit() {
        let lr = Lr {
            vintid: 33,
            source: 7,
            eoi_maint: true,
            ..Lr::default()
        };
        assert_eq!(encode_v2(&lr), (1 << 19) | 33);
    }
}
