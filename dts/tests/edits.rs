//! Edits checked through dtc: compile a small tree, edit, decode, compare.

use dts::{dtc, Tree, VmSpec};

const SRC: &str = r#"
/dts-v1/;
/memreserve/ 0x48000000 0x1000;
/ {
    interrupt-parent = <&gic>;
    #address-cells = <2>;
    #size-cells = <2>;
    model = "test";
    chosen { bootargs = "old"; };
    memory@40000000 { device_type = "memory"; reg = <0 0x40000000 0 0x20000000>; };
    memory@80000000 { device_type = "memory"; reg = <0 0x80000000 0 0x20000000>; };
    gic: intc@8000000 {
        compatible = "arm,cortex-a15-gic";
        #interrupt-cells = <3>;
        interrupt-controller;
    };
    timer { compatible = "arm,armv8-timer"; interrupts = <1 13 0xf04 1 14 0xf04 0 5 4>; };
    pmu { compatible = "arm,armv8-pmuv3"; interrupt-affinity = <&c0 &c1 &c2 &c3>; };
    ppi-partitions { part0 { affinity = <&c0 &c2>; }; };
    cpus {
        #address-cells = <1>;
        #size-cells = <0>;
        cpu-map { cluster0 { core0 { cpu = <&c0>; }; core1 { cpu = <&c1>; }; };
                  cluster1 { core0 { cpu = <&c2>; }; core1 { cpu = <&c3>; }; }; };
        c0: cpu@0 { device_type = "cpu"; reg = <0>; };
        c1: cpu@1 { device_type = "cpu"; reg = <1>; };
        c2: cpu@100 { device_type = "cpu"; reg = <0x100>; };
        c3: cpu@101 { device_type = "cpu"; reg = <0x101>; };
    };
    thermal { map0 { cooling-device = <&c2 0 1 &c3 0 1>; }; map1 { cooling-device = <&c0 0 1>; }; };
};
"#;

fn tree() -> Tree {
    Tree::from_dtb(&dtc::compile_source(SRC.as_bytes(), None).unwrap()).unwrap()
}

fn dts(t: &Tree) -> String {
    dtc::decompile(&t.to_dtb().unwrap()).unwrap()
}

#[test]
fn round_trip_is_exact() {
    let blob = dtc::compile_source(SRC.as_bytes(), None).unwrap();
    let t = Tree::from_dtb(&blob).unwrap();
    assert_eq!(dtc::decompile(&blob).unwrap(), dts(&t));
    assert_eq!(t.mem_reserve, vec![(0x4800_0000, 0x1000)]);
    assert_eq!(Tree::from_dtb(&t.to_dtb().unwrap()).unwrap(), t);
}

#[test]
fn trim_cpus_drops_references() {
    let mut t = tree();
    t.trim_cpus(2).unwrap();
    let s = dts(&t);
    assert!(s.contains("cpu@0 {") && s.contains("cpu@1 {"));
    assert!(!s.contains("cpu@100") && !s.contains("cpu@101"));
    assert!(!s.contains("cluster1"), "{s}");
    assert!(s.contains("cluster0"));
    let pmu = t
        .node("/pmu")
        .unwrap()
        .prop_cells("interrupt-affinity")
        .unwrap();
    assert_eq!(pmu.len(), 2);
    let part = t
        .node("/ppi-partitions/part0")
        .unwrap()
        .prop_cells("affinity")
        .unwrap();
    assert_eq!(
        part,
        vec![t.node("/cpus/cpu@0").unwrap().prop_u32("phandle").unwrap()]
    );
    assert!(t.node("/thermal/map0").is_err(), "emptied cooling map kept");
    assert_eq!(
        t.node("/thermal/map1")
            .unwrap()
            .prop_cells("cooling-device")
            .unwrap()
            .len(),
        3
    );
    // GICv2 PPI masks now name two CPUs; the SPI is untouched.
    assert_eq!(
        t.node("/timer").unwrap().prop_cells("interrupts").unwrap(),
        vec![1, 13, 0x304, 1, 14, 0x304, 0, 5, 4]
    );
    assert!(tree().trim_cpus(5).is_err());
    assert!(tree().trim_cpus(0).is_err());
}

#[test]
fn memory_chosen_virtio_vms() {
    let mut t = tree();
    t.set_memory(&[(0x4400_0000, 0x1000_0000)]).unwrap();
    t.set_bootargs("console=ttyAMA0").unwrap();
    t.set_initrd(0x4800_0000, 0x4812_3456).unwrap();
    t.set_stdout_path("/pl011@9000000").unwrap();
    t.add_virtio_mmio(0x0a00_3e00, 79).unwrap();
    assert!(
        t.add_virtio_mmio(0x0a00_3e00, 79).is_err(),
        "duplicate node"
    );
    assert!(t.add_virtio_mmio(0x0a00_3c00, 20).is_err(), "not an SPI");
    t.set_vm(&VmSpec {
        vmid: 0,
        name: "linux".into(),
        os_type: "linux".into(),
        vcpus: 2,
        entry: 0x4400_0000,
        affinity: vec![0, 1],
        memory: (0x4400_0000, 0x1000_0000),
        setup_data: 0x4700_0000,
        native_wfi: false,
        host: true,
    })
    .unwrap();
    let s = dts(&t);
    assert!(s.contains("memory@44000000 {"), "{s}");
    assert!(!s.contains("memory@80000000"));
    assert!(s.contains("reg = <0x00 0x44000000 0x00 0x10000000>;"));
    assert!(s.contains("bootargs = \"console=ttyAMA0\";"));
    assert!(s.contains("linux,initrd-start = <0x00 0x48000000>;"));
    assert!(s.contains("linux,initrd-end = <0x00 0x48123456>;"));
    assert!(s.contains("stdout-path = \"/pl011@9000000\";"));
    assert!(s.contains("virtio_mmio@a003e00 {"));
    assert!(s.contains("interrupts = <0x00 0x2f 0x01>;"));
    assert!(s.contains("reg = <0x00 0xa003e00 0x00 0x200>;"));
    assert!(s.contains("vm0 {") && s.contains("device_type = \"virtual_machine\";"));
    assert!(s.contains("entry = <0x00 0x44000000>;"));
    assert!(s.contains("setup_data = <0x00 0x47000000>;"));
    assert!(s.contains("host_vm;"));
    // The memreserve and phandles survive.
    assert!(s.contains("/memreserve/\t0x0000000048000000 0x0000000000001000;"));
    assert!(s.contains("phandle = <0x01>;"), "{s}");
    assert!(t.set_initrd(2, 1).is_err());
}

#[test]
fn merge_like_dtc() {
    let mut t = tree();
    let frag = Tree::from_dtb(
        &dtc::compile_source(
            b"/dts-v1/; / { model = \"new\"; chosen { x = <1>; }; vms { vm0 { vmid = <0>; }; }; };",
            None,
        )
        .unwrap(),
    )
    .unwrap();
    t.merge(&frag);
    // What dtc makes of the same two sources concatenated.
    let both = format!(
        "{SRC}\n/ {{ model = \"new\"; chosen {{ x = <1>; }}; vms {{ vm0 {{ vmid = <0>; }}; }}; }};"
    );
    let want = dtc::decompile(&dtc::compile_source(both.as_bytes(), None).unwrap()).unwrap();
    assert_eq!(dts(&t), want);
}

#[test]
fn duplicates_and_bad_paths_are_refused() {
    let mut t = tree();
    t.root.props.push(dts::Property {
        name: "model".into(),
        value: b"x\0".to_vec(),
    });
    assert!(t.to_dtb().is_err());
    let mut t = tree();
    assert!(t.delete_node("/nope").is_err());
    assert!(t.delete_node("relative").is_err());
    assert!(t.delete_property("/chosen", "nope").is_err());
    t.delete_node("/thermal").unwrap();
    t.delete_property("/chosen", "bootargs").unwrap();
    let s = dts(&t);
    assert!(!s.contains("thermal") && !s.contains("bootargs"));
}

#[test]
fn guest_edits() {
    let src = r#"/dts-v1/;
    / { #address-cells = <1>; #size-cells = <1>;
        cpus { #address-cells = <1>; #size-cells = <0>;
            cpu@0 { device_type = "cpu"; reg = <0>; enable-method = "spin-table"; cpu-release-addr = <0 0xd8>; };
            cpu@1 { device_type = "cpu"; reg = <1>; enable-method = "spin-table"; cpu-release-addr = <0 0xe0>; }; };
        intc@8000000 { compatible = "arm,cortex-a15-gic"; #interrupt-cells = <3>;
            reg = <0x8000000 0x10000 0x8010000 0x10000 0x8030000 0x10000 0x8040000 0x10000>;
            interrupts = <1 9 4>; }; };"#;
    let mut t = Tree::from_dtb(&dtc::compile_source(src.as_bytes(), None).unwrap()).unwrap();
    assert!(t.use_psci("hvc").unwrap());
    assert!(!t.use_psci("hvc").unwrap(), "second run changes nothing");
    assert!(t.use_psci("bogus").is_err());
    assert!(t.strip_gic_virtualization().unwrap());
    let s = dts(&t);
    assert!(
        !s.contains("spin-table") && !s.contains("cpu-release-addr"),
        "{s}"
    );
    assert_eq!(s.matches("enable-method = \"psci\";").count(), 2);
    assert!(s.contains("method = \"hvc\";"));
    assert!(
        s.contains("reg = <0x8000000 0x10000 0x8010000 0x10000>;"),
        "{s}"
    );
    assert!(!s.contains("interrupts = <0x01 0x09 0x04>"));
}

#[test]
fn duplicate_properties_in_a_blob_are_refused() {
    // vm-fdt writes what it is given, so it can make the blob dtc never would.
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("x", 1).unwrap();
    w.property_u32("x", 2).unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    let e = Tree::from_dtb(&blob).unwrap_err().to_string();
    assert!(e.contains("property x appears twice"), "{e}");
}

#[test]
fn corrupted_blobs_are_errors_not_panics() {
    let good = dtc::compile_source(SRC.as_bytes(), None).unwrap();
    let mut seen_ok = 0;
    for i in 0..good.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] ^= x;
            if Tree::from_dtb(&b).is_ok() {
                seen_ok += 1;
            }
        }
        let _ = Tree::from_dtb(&good[..i]);
    }
    // Flips inside property values still parse; the point is that nothing panicked.
    assert!(seen_ok > 0);
}

#[test]
fn overlay_with_labels_and_path_references() {
    let base = tree();
    let frag = "/dts-v1/;\n/ {\n  vms { vm0 { con = <&{/intc@8000000}>; dev = <&d>; }; };\n  d: dev { x = <1>; };\n};\n";
    let t = dtc::overlay_source(&base, frag, std::path::Path::new("frag.dts"), None).unwrap();
    let gic = t
        .node("/intc@8000000")
        .unwrap()
        .prop_u32("phandle")
        .unwrap();
    let vm0 = t.node("/vms/vm0").unwrap();
    assert_eq!(vm0.prop_u32("con"), Some(gic));
    let d = t.node("/dev").unwrap().prop_u32("phandle").unwrap();
    assert_eq!(vm0.prop_u32("dev"), Some(d));
    assert!(!base.phandles().contains(&d), "fresh phandle");
    // Errors name the fragment and its own line numbers.
    let e = dtc::overlay_source(
        &base,
        "/dts-v1/;\n/ {\n  x = <1>\n};\n",
        std::path::Path::new("frag.dts"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("frag.dts:4"), "{e}");
}
