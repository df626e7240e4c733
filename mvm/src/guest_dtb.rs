//! Patches the guest's DTB (the boot image's second stage) for the VM mvm creates: CPUs
//! trimmed to -c, memory, bootargs, initrd, one virtio-mmio node per -V device.

use dts::{DtsError, Node, Tree};
use minos_abi::guest::{
    KEY_POWER, POWER_GPIO_BASE, POWER_GPIO_INTID, POWER_GPIO_PIN, POWER_GPIO_SIZE,
};

use crate::config::Gic;

#[derive(Debug, thiserror::Error)]
pub enum DtbError {
    #[error("the guest DTB: {0}")]
    Dts(DtsError),
    #[error(
        "the guest DTB has no GIC (an interrupt-controller compatible with arm,gic-v3 or a GICv2)"
    )]
    NoGic,
    #[error("the guest DTB's GIC {0}: {1}")]
    GicReg(String, &'static str),
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

fn cells(v: u64, n: u32) -> Result<Vec<u32>, DtsError> {
    match n {
        1 => u32::try_from(v)
            .map(|x| vec![x])
            .map_err(|_| DtsError::Invalid(format!("{v:#x} does not fit in one cell"))),
        2 => Ok(vec![(v >> 32) as u32, v as u32]),
        n => Err(DtsError::Invalid(format!("#cells = {n} is not supported"))),
    }
}

/// The power button `VM_SHUTDOWN` presses: the hypervisor's PL061 (with the fixed APB clock
/// a primecell device needs) and a `gpio-keys` node sending `KEY_POWER`, as QEMU's virt does.
fn add_power_button(t: &mut Tree) -> Result<(), DtsError> {
    if t.root.prop_u32("interrupt-parent").is_none() {
        return Err(DtsError::Invalid(
            "the root has no interrupt-parent for the power button".into(),
        ));
    }
    let gpio_name = format!("pl061@{POWER_GPIO_BASE:x}");
    for name in [gpio_name.as_str(), "minos-apb-pclk", "minos-power-key"] {
        if t.root.child(name).is_some() {
            return Err(DtsError::DuplicateNode(format!("/{name}")));
        }
    }
    let (ac, sc) = t.root.cells();
    let clk_ph = t.new_phandle();
    let gpio_ph = clk_ph + 1;

    let mut clk = Node::new("minos-apb-pclk");
    clk.set_str("compatible", "fixed-clock");
    clk.set_u32("#clock-cells", 0);
    clk.set_u32("clock-frequency", 24_000_000);
    clk.set_str("clock-output-names", "clk24mhz");
    clk.set_u32("phandle", clk_ph);

    let mut gpio = Node::new(&gpio_name);
    gpio.set("compatible", b"arm,pl061\0arm,primecell\0".to_vec());
    let mut reg = cells(POWER_GPIO_BASE, ac)?;
    reg.extend(cells(POWER_GPIO_SIZE, sc)?);
    gpio.set_cells("reg", &reg);
    // GIC_SPI, SPI number, IRQ_TYPE_LEVEL_HIGH
    gpio.set_cells("interrupts", &[0, POWER_GPIO_INTID - 32, 4]);
    gpio.set_empty("gpio-controller");
    gpio.set_u32("#gpio-cells", 2);
    gpio.set_u32("clocks", clk_ph);
    gpio.set_str("clock-names", "apb_pclk");
    gpio.set_u32("phandle", gpio_ph);

    let mut key = Node::new("poweroff");
    key.set_str("label", "GPIO Key Poweroff");
    key.set_u32("linux,code", KEY_POWER);
    key.set_cells("gpios", &[gpio_ph, POWER_GPIO_PIN, 0]);
    let mut keys = Node::new("minos-power-key");
    keys.set_str("compatible", "gpio-keys");
    keys.children.push(key);

    t.root.children.extend([clk, gpio, keys]);
    Ok(())
}

/// Where the guest DTB puts its GIC: (distributor, redistributors or CPU interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicPlacement {
    pub kind: Gic,
    pub dist: u64,
    pub cpu: u64,
}

fn read_cells(cells: &[u32], n: u32) -> Option<(u64, &[u32])> {
    let n = n as usize;
    if cells.len() < n || n == 0 || n > 2 {
        return None;
    }
    let v = cells[..n]
        .iter()
        .fold(0u64, |acc, &c| acc << 32 | u64::from(c));
    Some((v, &cells[n..]))
}

/// The first GIC in the tree and its first two `reg` ranges. Its parents must map addresses
/// one to one (no `ranges` translation), as in the guest DTBs mvm boots.
fn find_gic(
    node: &Node,
    path: &str,
    cells: (u32, u32),
    root: bool,
) -> Result<Option<GicPlacement>, DtbError> {
    for c in &node.children {
        let cpath = format!("{path}/{}", c.name);
        if c.prop("interrupt-controller").is_some() {
            if let Some(kind) = gic_kind(c) {
                if !root {
                    if let Some(r) = node.prop("ranges") {
                        if !r.value.is_empty() {
                            return Err(DtbError::GicReg(
                                cpath,
                                "sits behind a bus that translates addresses",
                            ));
                        }
                    }
                }
                let reg = c
                    .prop_cells("reg")
                    .ok_or(DtbError::GicReg(cpath.clone(), "has no reg"))?;
                let bad = || DtbError::GicReg(cpath.clone(), "needs two reg ranges");
                let (dist, rest) = read_cells(&reg, cells.0).ok_or_else(bad)?;
                let (_, rest) = read_cells(rest, cells.1).ok_or_else(bad)?;
                let (cpu, _) = read_cells(rest, cells.0).ok_or_else(bad)?;
                return Ok(Some(GicPlacement { kind, dist, cpu }));
            }
        }
        if let Some(g) = find_gic(c, &cpath, c.cells(), false)? {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// The patched DTB and where its GIC is (the hypervisor emulates it there).
pub fn patch(dtb: &[u8], p: &DtbParams) -> Result<(Vec<u8>, GicPlacement), DtbError> {
    let mut t = Tree::from_dtb(dtb).map_err(DtbError::Dts)?;
    let gic = find_gic(&t.root, "", t.root.cells(), true)?.ok_or(DtbError::NoGic)?;
    if gic.kind != p.gic {
        return Err(DtbError::GicMismatch {
            found: gic_name(gic.kind),
            asked: gic_name(p.gic),
        });
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
    add_power_button(&mut t).map_err(DtbError::Dts)?;
    Ok((t.to_dtb().map_err(DtbError::Dts)?, gic))
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
        let (dtb, gic) = patch(&guest_dtb(), &params()).unwrap();
        assert_eq!(
            gic,
            GicPlacement {
                kind: Gic::V3,
                dist: 0x800_0000,
                cpu: 0x80a_0000
            }
        );
        let out = Tree::from_dtb(&dtb).unwrap();
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
        let gpio = out.node("/pl061@40100000").unwrap();
        assert_eq!(gpio.prop_cells("reg").unwrap(), [0, 0x4010_0000, 0, 0x1000]);
        assert_eq!(gpio.prop_cells("interrupts").unwrap(), [0, 8, 4]);
        let gpio_ph = gpio.prop_u32("phandle").unwrap();
        let clk = out.node("/minos-apb-pclk").unwrap();
        assert_eq!(gpio.prop_u32("clocks"), clk.prop_u32("phandle"));
        let key = out.node("/minos-power-key/poweroff").unwrap();
        assert_eq!(key.prop_cells("gpios").unwrap(), [gpio_ph, 3, 0]);
        assert_eq!(key.prop_u32("linux,code"), Some(116));
        assert!(out.check().is_ok());
    }

    #[test]
    fn dtc_reads_the_patched_dtb() {
        let (dtb, _) = patch(&guest_dtb(), &params()).unwrap();
        let dts = dts::dtc::decompile(&dtb).unwrap();
        // dtc prints this string list with its NUL separator.
        assert!(
            dts.contains(r#"compatible = "arm,pl061\0arm,primecell";"#),
            "{dts}"
        );
        assert!(dts.contains("compatible = \"gpio-keys\";"), "{dts}");
    }

    #[test]
    fn no_ramdisk_drops_the_initrd_properties() {
        let p = DtbParams {
            initrd: None,
            ..params()
        };
        let out = Tree::from_dtb(&patch(&guest_dtb(), &p).unwrap().0).unwrap();
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
        let no_gic = GUEST_DTS.replace("interrupt-controller;", "");
        let dtb = dts::dtc::compile_source(no_gic.as_bytes(), None).unwrap();
        let e = patch(&dtb, &params()).unwrap_err().to_string();
        assert!(e.contains("has no GIC"), "{e}");
        let one_reg = GUEST_DTS.replace(", <0x0 0x80a0000 0x0 0xf60000>", "");
        let dtb = dts::dtc::compile_source(one_reg.as_bytes(), None).unwrap();
        let e = patch(&dtb, &params()).unwrap_err().to_string();
        assert!(e.contains("needs two reg ranges"), "{e}");
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
