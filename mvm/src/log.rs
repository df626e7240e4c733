//! Minos-style log lines on standard error: `[INFO ] ...`, `[DEBUG] ...` with -v.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(v: bool) {
    VERBOSE.store(v, Ordering::Relaxed);
}

pub fn info(msg: &str) {
    for line in msg.lines() {
        eprintln!("[INFO ] {line}");
    }
}

pub fn warn(msg: &str) {
    eprintln!("[WARN ] {msg}");
}

pub fn debug(msg: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        eprintln!("[DEBUG] {msg}");
    }
}
