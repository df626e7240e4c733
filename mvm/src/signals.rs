//! Signals an owning mvm obeys: SIGTERM/SIGINT (destroy the VM and exit), SIGHUP (restart the
//! VM from its images). They are blocked and taken synchronously, so no handler runs code.

use std::io;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Restart,
}

pub struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    pub fn block() -> io::Result<Signals> {
        // SAFETY: sigset manipulation on a local set, then masking for this (only) thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals { set })
        }
    }

    /// The next signal, or `None` after `timeout`.
    pub fn wait(&self, timeout: Duration) -> io::Result<Option<Signal>> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // SAFETY: the set and timespec are live locals; a null siginfo is allowed.
        let s = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
        if s < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(if s == libc::SIGHUP {
            Signal::Restart
        } else {
            Signal::Terminate
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_sighup_is_taken_as_restart() {
        let s = Signals::block().unwrap();
        // SAFETY: raising a signal this thread has blocked only marks it pending.
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGHUP) };
        assert_eq!(
            s.wait(Duration::from_secs(5)).unwrap(),
            Some(Signal::Restart)
        );
        assert_eq!(s.wait(Duration::from_millis(1)).unwrap(), None);
    }
}
