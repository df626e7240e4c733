//! Decoding software-generated-interrupt requests: GICv3 `ICC_SGI1R_EL1` writes and GICv2
//! `GICD_SGIR` writes, into the set of target vCPUs.

use super::{vcpu_of_affinity, VcpuMask, CLUSTER_SIZE};

/// The fields of an `ICC_SGI1R_EL1` write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sgi1r {
    pub intid: u32,
    pub target_list: u16,
    pub aff1: u8,
    pub aff2: u8,
    pub aff3: u8,
    /// Range selector: the target list covers Aff0 = 16*rs .. 16*rs+15.
    pub rs: u8,
    /// Interrupt routing mode: 1 = every PE but the sender.
    pub irm: bool,
}

pub fn decode_sgi1r(v: u64) -> Sgi1r {
    Sgi1r {
        target_list: v as u16,
        aff1: (v >> 16) as u8,
        intid: ((v >> 24) & 0xf) as u32,
        aff2: (v >> 32) as u8,
        irm: v & (1 << 40) != 0,
        rs: ((v >> 44) & 0xf) as u8,
        aff3: (v >> 48) as u8,
    }
}

/// The vCPUs an SGI1R write from `sender` reaches.
pub fn sgi1r_targets(req: &Sgi1r, sender: usize, nr_vcpus: usize) -> VcpuMask {
    if req.irm {
        let all = if nr_vcpus >= 64 {
            u64::MAX
        } else {
            (1u64 << nr_vcpus) - 1
        };
        return VcpuMask(all & !VcpuMask::single(sender).0);
    }
    let mut m = VcpuMask::EMPTY;
    for bit in VcpuMask(u64::from(req.target_list)).iter() {
        let aff0 = u64::from(req.rs) * CLUSTER_SIZE as u64 + bit as u64;
        if aff0 > 0xff {
            continue;
        }
        let aff = (u64::from(req.aff3) << 32)
            | (u64::from(req.aff2) << 16)
            | (u64::from(req.aff1) << 8)
            | aff0;
        if let Some(v) = vcpu_of_affinity(aff, nr_vcpus) {
            m |= VcpuMask::single(v);
        }
    }
    m
}

/// If a trapped MSR/MRS (ESR_EL2.EC = 0x18) with syndrome `iss` is a write of
/// `ICC_SGI1R_EL1` (op0 3, op1 0, CRn 12, CRm 11, op2 5), the number of its source register
/// Rt (31 = XZR).
pub fn sgi1r_write_rt(iss: u32) -> Option<u8> {
    const ENC_MASK: u32 = (3 << 20) | (7 << 17) | (7 << 14) | (0xf << 10) | (0xf << 1) | 1;
    // op1 = 0 and direction = write are the zero fields.
    const SGI1R_WRITE: u32 = (3 << 20) | (5 << 17) | (12 << 10) | (11 << 1);
    (iss & ENC_MASK == SGI1R_WRITE).then_some(((iss >> 5) & 0x1f) as u8)
}

/// The vCPUs a GICv2 `GICD_SGIR` write from `sender` reaches, and the SGI number.
pub fn sgir_targets(v: u32, sender: usize, nr_vcpus: usize) -> (u32, VcpuMask) {
    let intid = v & 0xf;
    let all = (1u64 << nr_vcpus) - 1;
    let m = match (v >> 24) & 3 {
        0 => u64::from((v >> 16) & 0xff) & all,
        1 => all & !(1 << sender),
        2 => 1 << sender,
        _ => 0, // reserved filter value: no target
    };
    (intid, VcpuMask(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sgi1r(intid: u64, list: u64, aff1: u64, rs: u64, irm: bool) -> u64 {
        list | (aff1 << 16) | (intid << 24) | (u64::from(irm) << 40) | (rs << 44)
    }

    #[test]
    fn target_list_in_cluster_zero() {
        let r = decode_sgi1r(sgi1r(5, 0b1010, 0, 0, false));
        assert_eq!(r.intid, 5);
        assert_eq!(sgi1r_targets(&r, 0, 4), VcpuMask(0b1010));
        // Targets beyond the VM's vCPUs are dropped.
        let r = decode_sgi1r(sgi1r(1, 0b1_0001, 0, 0, false));
        assert_eq!(sgi1r_targets(&r, 0, 4), VcpuMask(0b1));
    }

    #[test]
    fn aff1_selects_the_second_cluster() {
        // vCPU 17 is Aff1=1, Aff0=1.
        let r = decode_sgi1r(sgi1r(2, 0b10, 1, 0, false));
        assert_eq!(sgi1r_targets(&r, 0, 20), VcpuMask(1 << 17));
        // Aff2/Aff3 non-zero never match our scheme.
        let r = decode_sgi1r(sgi1r(2, 0b10, 0, 0, false) | (1 << 32));
        assert_eq!(sgi1r_targets(&r, 0, 20), VcpuMask::EMPTY);
        let r = decode_sgi1r(sgi1r(2, 0b10, 0, 0, false) | (1 << 48));
        assert_eq!(r.aff3, 1);
        assert_eq!(sgi1r_targets(&r, 0, 20), VcpuMask::EMPTY);
    }

    #[test]
    fn range_selector_never_matches_aff0_above_15() {
        let r = decode_sgi1r(sgi1r(2, 1, 0, 1, false));
        assert_eq!(r.rs, 1);
        assert_eq!(sgi1r_targets(&r, 0, 64), VcpuMask::EMPTY);
    }

    #[test]
    fn irm_broadcasts_to_all_but_sender() {
        let r = decode_sgi1r(sgi1r(0, 0xffff, 0, 0, true));
        assert_eq!(sgi1r_targets(&r, 2, 4), VcpuMask(0b1011));
        assert_eq!(sgi1r_targets(&r, 0, 1), VcpuMask::EMPTY);
        assert_eq!(sgi1r_targets(&r, 63, 64), VcpuMask(u64::MAX >> 1));
    }

    #[test]
    fn sgi1r_trap_syndrome() {
        // msr ICC_SGI1R_EL1, x7: op0 3, op2 5, op1 0, CRn 12, Rt 7, CRm 11, write.
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (7 << 5) | (11 << 1);
        assert_eq!(sgi1r_write_rt(iss), Some(7));
        assert_eq!(sgi1r_write_rt(iss | 1), None, "a read");
        assert_eq!(sgi1r_write_rt(iss ^ (1 << 17)), None, "op2 4: not SGI1R");
        // ICC_ASGI1R_EL1 (op2 6) and ICC_SGI0R_EL1 (op2 7) are other registers.
        assert_eq!(sgi1r_write_rt((iss & !(7 << 17)) | (6 << 17)), None);
        assert_eq!(sgi1r_write_rt((iss & !(7 << 17)) | (7 << 17)), None);
        assert_eq!(sgi1r_write_rt(iss | (31 << 5)), Some(31));
    }

    #[test]
    fn sgir_filters() {
        // Filter 0: the list, masked to existing CPUs.
        assert_eq!(sgir_targets(0x00f3_0007, 0, 2), (7, VcpuMask(0b11)));
        // Filter 1: all but self.
        assert_eq!(sgir_targets(0x0100_0001, 1, 4), (1, VcpuMask(0b1101)));
        // Filter 2: self only.
        assert_eq!(sgir_targets(0x02ff_0003, 3, 4), (3, VcpuMask(0b1000)));
        // Filter 3 is reserved.
        assert_eq!(sgir_targets(0x03ff_0003, 3, 4).1, VcpuMask::EMPTY);
    }
}
