//! The `TESTGUEST:` result lines and their tally.

use core::fmt;

use crate::console::println;

#[derive(Default)]
pub struct Report {
    passed: u32,
    total: u32,
}

impl Report {
    pub fn result(&mut self, name: &str, ok: bool, detail: fmt::Arguments) {
        self.total += 1;
        if ok {
            self.passed += 1;
        }
        let verdict = if ok { "PASS" } else { "FAIL" };
        println!("TESTGUEST: {name}: {verdict} {detail}");
    }

    /// A check that cannot run on this machine; not counted.
    pub fn skip(&self, name: &str, why: fmt::Arguments) {
        println!("TESTGUEST: {name}: SKIP {why}");
    }

    pub fn done(&self) {
        println!("TESTGUEST: done {}/{}", self.passed, self.total);
    }
}
