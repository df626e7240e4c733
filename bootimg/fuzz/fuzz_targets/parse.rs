//! Any byte string either parses into an image whose components lie inside it, or is an error;
//! a parsed v0-v2 image rebuilds into one that parses back to the same components.
#![no_main]

use bootimg::{build, BootImage, Header, IdMode, Parts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = BootImage::parse(data) else {
        return;
    };
    for (_, s) in img.layout.sections() {
        assert!(s.offset + s.size <= data.len() as u64);
        let _ = img.section(s);
    }
    let _ = bootimg::info::describe(&img.header, &img.layout, "fuzz", data.len() as u64);
    if let Header::Legacy(h) = &img.header {
        let _ = bootimg::config::write_config(h, data.len() as u64);
        let parts = Parts {
            kernel: img.kernel(),
            ramdisk: img.ramdisk(),
            second: img.second(),
            recovery_dtbo: img.recovery_dtbo(),
            dtb: img.dtb(),
        };
        let (_, bytes) = build(h, &parts, IdMode::Keep, 0).expect("a parsed image rebuilds");
        let again = BootImage::parse(&bytes).expect("a rebuilt image parses");
        assert_eq!(again.kernel(), img.kernel());
        assert_eq!(again.ramdisk(), img.ramdisk());
        assert_eq!(again.second(), img.second());
        assert_eq!(again.recovery_dtbo(), img.recovery_dtbo());
        assert_eq!(again.dtb(), img.dtb());
    }
});
