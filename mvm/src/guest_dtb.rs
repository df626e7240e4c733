//! Patches the guest's DTB (the boot image's second stage) for the VM mvm creates: CPUs
//! trimmed to -c, memory, bootargs, initrd, one virtio-mmio node per -V device.

use dts::{DtsError, Node, Tree};

use crate::config::Gic;

#[derive(Debug, thiserror::Error)]
pub enum DtbError {
    #[error("the guest DTB: {0}")]
    Dts(DtsError),
    #[error("the guest DTB describes a {found} but the VM gets a {asked} (--gicv2/--gicv3)")]
    GicMismatch {
        found: &'static str,
        asked: &'static str,
    },
}

/// What the VM looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtbParams {
    pub vcpus: u32,
    pub mem_base: u64,
    pub mem_size: u64,
    pub bootargs: String,
    /// Guest IPA range of the ramdisk (end exclusive).
    pub initrd: Option<(u64, u64)>,
    /// (register window, INTID) of each virtio-mmio device.
    pub virtio: Vec<(u64, u32)>,
    pub gic: Gic,
}

/// The guest's command line: the boot image's, then -C (so -C's settings win).
pub fn bootargs(image: &str, extra: Option<&str>) -> String {
    match (image.trim(), extra.map(str::trim).unwrap_or("")) {
        (i, "") => i.to_string(),
        ("", e) => e.to_string(),
        (i, e) => format!("{i} {e}"),
    }
}

fn gic_kind(n: &Node) -> Option<Gic> {
    let compat = n.prop("compatible")?;
    let mut kind = None;
    for c in compat.value.split(|&b| b == 0) {
        match c {
            b"arm,gic-v3" => kind = Some(Gic::V3),
            b"arm,cortex-a15-gic"
            | b"arm,gic-400"
            | b"arm,cortex-a9-gic"
            | b"arm,cortex-a7-gic" => kind = Some(Gic::V2),
            _ => {}
        }
    }
    kind
}

fn gic_name(g: Gic) -> &'static str {
    match g {
        Gic::V2 => "GICv2",
        Gic::V3 => "GICv3",
    }
}

/// Returns the patched DTB.
pub fn patch(dtb: &[u8], p: &DtbParams) -> Result<Vec<u8>, DtbError> {
    let mut t = Tree::from_dtb(dtb).map_err(DtbError::Dts)?;
    let mut found = None;
    t.root.walk(&mut |n| {
        if n.prop("interrupt-controller").is_some() {
            found = found.or(gic_kind(n));
        }
    });
    if let Some(found) = found {
        if found != p.gic {
            return Err(DtbError::GicMismatch {
                found: gic_name(found),
                asked: gic_name(p.gic),
            });
        }
    }
    t.trim_cpus(p.vcpus as usize).map_err(DtbError::Dts)?;
    t.set_memory(&[(p.mem_base, p.mem_size)])
        .map_err(DtbError::Dts)?;
    t.set_bootargs(&p.bootargs).map_err(DtbError::Dts)?;
    match p.initrd {
        Some((start, end)) => t.set_initrd(start, end).map_err(DtbError::Dts)?,
        None => {
            if let Ok(chosen) = t.node_mut("/chosen") {
                chosen.remove("linux,initrd-start");
                chosen.remove("linux,initrd-end");
            }
        }
    }
    for &(addr, intid) in &p.virtio {
        t.add_virtio_mmio(addr, intid).map_err(DtbError::Dts)?;
    }
    t.to_dtb().map_err(DtbError::Dts)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const GUEST_DTS: &str = r#"/dts-v1/;
/ {
    #address-cells = <2>;
    #size-cells = <2>;
    interrupt-parent = <&gic>;
    compatible = "linux,dummy-virt";
    cpus {
        #address-cells = <1>;
        #size-cells = <0>;
        cpu@0 { device_type = "cpu"; compatible = "arm,cortex-a57"; reg = <0>; enable-method = "psci"; };
        cpu@1 { device_type = "cpu"; compatible = "arm,cortex-a57"; reg = <1>; enable-method = "psci"; };
        cpu@2 { device_type = "cpu"; compatible = "arm,cortex-a57"; reg = <2>; enable-method = "psci"; };
        cpu@3 { device_type = "cpu"; compatible = "arm,cortex-a57"; reg = <3>; enable-method = "psci"; };
    };
    memory@80000000 { device_type = "memory"; reg = <0x0 0x80000000 0x0 0x8000000>; };
    gic: interrupt-controller@8000000 {
        compatible = "arm,gic-v3";
        #interrupt-cells = <3>;
        interrupt-controller;
        reg = <0x0 0x8000000 0x0 0x10000>, <0x0 0x80a0000 0x0 0xf60000>;
    };
    chosen { bootargs = "old"; linux,initrd-start = <0x0 0x1>; linux,initrd-end = <0x0 0x2>; };
};
"#;

    pub(crate) fn guest_dtb() -> Vec<u8> {
        dts::dtc::compile_source(GUEST_DTS.as_bytes(), None).unwrap()
    }

    fn params() -> DtbParams {
        DtbParams {
            vcpus: 2,
            mem_base: 0x8000_0000,
            mem_size: 84 << 20,
            bootargs: "console=hvc0 root=/dev/vda2".into(),
            initrd: Some((0x8300_0000, 0x8310_4e21)),
            virtio: vec![(0x4000_0000, 32), (0x4000_0200, 33)],
            gic: Gic::V3,
        }
    }

    #[test]
    fn patches_every_part() {
        let out = Tree::from_dtb(&patch(&guest_dtb(), &params()).unwrap()).unwrap();
        let cpus = out.node("/cpus").unwrap();
        let names: Vec<_> = cpus.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpu@0", "cpu@1"]);
        let mem = out.node("/memory@80000000").unwrap();
        assert_eq!(
            mem.prop_cells("reg").unwrap(),
            [0, 0x8000_0000, 0, 84 << 20]
        );
        let chosen = out.node("/chosen").unwrap();
        assert_eq!(
            chosen.prop_str("bootargs"),
            Some("console=hvc0 root=/dev/vda2")
        );
        assert_eq!(
            chosen.prop_cells("linux,initrd-start").unwrap(),
            [0, 0x8300_0000]
        );
        assert_eq!(
            chosen.prop_cells("linux,initrd-end").unwrap(),
            [0, 0x8310_4e21]
        );
        let v = out.node("/virtio_mmio@40000200").unwrap();
        assert_eq!(v.prop_str("compatible"), Some("virtio,mmio"));
        assert_eq!(v.prop_cells("interrupts").unwrap(), [0, 1, 1]);
        assert_eq!(v.prop_cells("reg").unwrap(), [0, 0x4000_0200, 0, 0x200]);
    }

    #[test]
    fn no_ramdisk_drops_the_initrd_properties() {
        let p = DtbParams {
            initrd: None,
            ..params()
        };
        let out = Tree::from_dtb(&patch(&guest_dtb(), &p).unwrap()).unwrap();
        let chosen = out.node("/chosen").unwrap();
        assert!(chosen.prop("linux,initrd-start").is_none());
        assert!(chosen.prop("linux,initrd-end").is_none());
    }

    #[test]
    fn errors() {
        let p = DtbParams {
            vcpus: 8,
            ..params()
        };
        let e = patch(&guest_dtb(), &p).unwrap_err().to_string();
        assert!(e.contains("cannot keep 8 CPUs: the DTB has 4"), "{e}");
        let p = DtbParams {
            gic: Gic::V2,
            ..params()
        };
        let e = patch(&guest_dtb(), &p).unwrap_err().to_string();
        assert!(
            e.contains("describes a GICv3 but the VM gets a GICv2"),
            "{e}"
        );
        let e = patch(b"garbage", &params()).unwrap_err().to_string();
        assert!(e.starts_with("the guest DTB: not a valid DTB"), "{e}");
    }

    #[test]
    fn bootargs_join_image_then_option() {
        assert_eq!(
            bootargs("console=hvc0", Some("root=/dev/vda2")),
            "console=hvc0 root=/dev/vda2"
        );
        assert_eq!(bootargs("console=hvc0 ", None), "console=hvc0");
        assert_eq!(bootargs("", Some("a=b")), "a=b");
        assert_eq!(bootargs("", None), "");
    }
}
