//! System-register access by encoding (`S<op0>_<op1>_C<n>_C<m>_<op2>`).

macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a GIC/EL2 system register at EL2 has no side effect the harness
        // does not intend (ICC_IAR1_EL1 acknowledges, which is the point of reading it).
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack)) };
        v
    }};
}

macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the harness owns the whole machine at EL2.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack)) };
    }};
}

pub(crate) use {mrs, msr};
