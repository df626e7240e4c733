//! Exceptions the hypervisor injects into an AArch64 EL1 guest: where the guest's vector table
//! takes them and with which syndrome, as the architecture would have delivered them.

/// What to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// An UNDEFINED instruction (EC 0, "unknown reason").
    Undef,
    /// A synchronous external data abort at `far`.
    DataAbort,
    /// A synchronous external instruction abort.
    PrefetchAbort,
}

/// Register values that deliver the exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// New ELR_EL2: the vector the guest takes it at.
    pub vector: u64,
    pub esr_el1: u64,
    /// New SPSR_EL2: EL1h with DAIF masked.
    pub spsr_el2: u64,
}

const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_LOWER: u64 = 0x20;
const EC_DABT_LOWER: u64 = 0x24;
const IL: u64 = 1 << 25;
/// Synchronous external abort, not on a translation table walk.
const FSC_EXTERNAL: u64 = 0x10;

/// Computes the delivery of `what` to a guest that was running with PSTATE `spsr` (the
/// trapped SPSR_EL2) and has `vbar` in VBAR_EL1. `None` for an AArch32 guest.
pub fn deliver(what: Injected, spsr: u64, vbar: u64, trapped_esr: u64) -> Option<Delivery> {
    if spsr & (1 << 4) != 0 {
        return None;
    }
    let from_el0 = spsr & 0b1100 == 0;
    let offset = match spsr & 0b1111 {
        0b0100 => 0x000, // EL1t: current EL with SP_EL0
        0b0101 => 0x200, // EL1h: current EL with SP_ELx
        _ => 0x400,      // EL0: lower EL, AArch64
    };
    // Same-EL aborts have EC one above the lower-EL ones.
    let same = u64::from(!from_el0);
    let esr = match what {
        Injected::Undef => (EC_UNKNOWN << 26) | IL,
        Injected::DataAbort => {
            // Keep WnR from the trapped access so the guest's handler reports it right.
            let wnr = trapped_esr & (1 << 6);
            ((EC_DABT_LOWER + same) << 26) | IL | wnr | FSC_EXTERNAL
        }
        Injected::PrefetchAbort => ((EC_IABT_LOWER + same) << 26) | IL | FSC_EXTERNAL,
    };
    Some(Delivery {
        vector: vbar + offset,
        esr_el1: esr,
        spsr_el2: 0x3c5,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undef_from_el1h_goes_to_current_spx_sync() {
        let d = deliver(Injected::Undef, 0x3c5, 0xffff_8000_1000_0000, 0).unwrap();
        assert_eq!(d.vector, 0xffff_8000_1000_0200);
        assert_eq!(d.esr_el1, 0x0200_0000);
        assert_eq!(d.spsr_el2, 0x3c5);
    }

    #[test]
    fn aborts_from_el0_use_lower_el_vector_and_ec() {
        let d = deliver(Injected::DataAbort, 0x0, 0x1000, 1 << 6).unwrap();
        assert_eq!(d.vector, 0x1400);
        assert_eq!(d.esr_el1, (0x24 << 26) | IL | (1 << 6) | 0x10);
        let d = deliver(Injected::PrefetchAbort, 0x3c4, 0x1000, 0).unwrap();
        assert_eq!(d.vector, 0x1000);
        assert_eq!(d.esr_el1 >> 26, 0x21);
    }

    #[test]
    fn aarch32_is_not_handled_here() {
        assert_eq!(deliver(Injected::Undef, 0x13, 0, 0), None);
    }
}
