//! bootimg.cfg parsing never panics, and whatever it accepts is written back and re-read to the
//! same header.
#![no_main]

use bootimg::config::{apply, parse_config, write_config};
use bootimg::LegacyHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = parse_config(data) else {
        return;
    };
    let mut h = LegacyHeader::new();
    let mut bootsize = 0;
    for e in &entries {
        apply(e, &mut h, &mut bootsize);
    }
    let text = write_config(&h, bootsize);
    // Names or command lines holding a newline cannot round-trip through a line format.
    if let Ok(back) = parse_config(&text) {
        let mut h2 = LegacyHeader::new();
        let mut bootsize2 = 0;
        for e in &back {
            apply(e, &mut h2, &mut bootsize2);
        }
        assert_eq!(h2, h);
        assert_eq!(bootsize2, bootsize);
    }
});
