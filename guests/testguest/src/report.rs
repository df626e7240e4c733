//! The `TESTGUEST:` result lines and their tally.

use core::fmt;

use crate::console::println;

pub struct Report {
    passed: u32,
    total: u32,
    /// `TESTGUEST`, or `HOSTILE` in the hostile build.
    prefix: &'static str,
}

impl Default for Report {
    fn default() -> Self {
        Self::with_prefix("TESTGUEST")
    }
}

impl Report {
    pub fn with_prefix(prefix: &'static str) -> Self {
        Self {
            passed: 0,
            total: 0,
            prefix,
        }
    }

    pub fn result(&mut self, name: &str, ok: bool, detail: fmt::Arguments) {
        self.total += 1;
        if ok {
            self.passed += 1;
        }
        let verdict = if ok { "PASS" } else { "FAIL" };
        println!("{}: {name}: {verdict} {detail}", self.prefix);
    }

    /// A check that cannot run on this machine; not counted.
    pub fn skip(&self, name: &str, why: fmt::Arguments) {
        println!("{}: {name}: SKIP {why}", self.prefix);
    }

    pub fn done(&self) {
        println!("{}: done {}/{}", self.prefix, self.passed, self.total);
    }
}
