//! Leveled logging to the board console.
//!
//! The console is registered once it is reachable (after the MMU is on); lines logged before
//! that are dropped. One lock serialises whole lines so CPUs never interleave mid-line.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::spin::SpinLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Error => "E",
            Level::Warn => "W",
            Level::Info => "I",
            Level::Debug => "D",
        }
    }

    /// Parses `error`, `warn`, `info` or `debug` (as given in the DT `minos,loglevel`).
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }
}

/// Where log lines go: the board UART, or a buffer in tests.
pub trait Sink: Sync {
    fn write_str(&self, s: &str);
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static SINK: SpinLock<Option<&'static dyn Sink>> = SpinLock::new(None);

pub fn set_sink(sink: &'static dyn Sink) {
    *SINK.lock() = Some(sink);
}

pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

struct Adapter(&'static dyn Sink);

impl Write for Adapter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s);
        Ok(())
    }
}

/// Runs `f` holding the log's lock: console output that is not a log line (the VMs' own) must
/// not be cut into a log line by another pCPU, nor cut one. `f` must not log.
pub fn hold<R>(f: impl FnOnce() -> R) -> R {
    let _g = SINK.lock();
    f()
}

pub fn log(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let guard = SINK.lock();
    if let Some(sink) = *guard {
        let mut w = Adapter(sink);
        // The adapter never fails, so neither does formatting into it.
        let _ = writeln!(w, "[minos] {} {}", level.tag(), args);
    }
}

/// Limits log lines a guest can trigger: the first `burst` events are logged, then one in every
/// power of two, so a guest hammering a fault cannot flood the console.
pub struct RateLimit {
    count: AtomicU32,
    burst: u32,
}

impl RateLimit {
    pub const fn new(burst: u32) -> Self {
        Self {
            count: AtomicU32::new(0),
            burst,
        }
    }

    /// Counts one event; returns the event's number (from 1) if it should be logged.
    pub fn allow(&self) -> Option<u32> {
        let n = self.count.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        (n <= self.burst || n.is_power_of_two()).then_some(n)
    }
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warn, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($t)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Buf(Mutex<String>);
    impl Sink for Buf {
        fn write_str(&self, s: &str) {
            self.0.lock().unwrap().push_str(s);
        }
    }

    #[test]
    fn lines_are_prefixed_and_filtered_by_level() {
        let buf: &'static Buf = Box::leak(Box::new(Buf(Mutex::new(String::new()))));
        set_sink(buf);
        set_max_level(Level::Info);
        info!("hello {}", 42);
        debug!("hidden");
        let out = buf.0.lock().unwrap().clone();
        assert!(out.contains("[minos] I hello 42\n"), "{out}");
        assert!(!out.contains("hidden"));
    }

    #[test]
    fn rate_limit_allows_burst_then_powers_of_two() {
        let r = RateLimit::new(3);
        let allowed: Vec<u32> = (0..20).filter_map(|_| r.allow()).collect();
        assert_eq!(allowed, vec![1, 2, 3, 4, 8, 16]);
    }

    #[test]
    fn level_parse() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("loud"), None);
    }
}
