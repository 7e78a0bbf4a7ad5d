//! Work `serve` does beside the request path (the indexer, the console's
//! pages, downloads and integrity checks) runs on threads of its own at
//! the lowest CPU priority: on a busy machine the scheduler runs the
//! receiver's workers and the log writer first, and this work in the time
//! left over, so a compliance officer browsing cannot slow an ack.

use std::io;

use tokio::sync::oneshot;

/// Gives this thread the lowest CPU priority (nice 19); threads it starts
/// inherit it. Best effort: a refusal only leaves it at the process's
/// priority.
pub fn lowest_priority() {
    // SAFETY: gettid and setpriority take no pointers; on Linux a thread
    // id names one thread for PRIO_PROCESS.
    let refused = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 19) != 0
    };
    if refused {
        tracing::debug!(error = %io::Error::last_os_error(), "could not lower a background thread's priority");
    }
}

/// Runs `work` on a new thread named `name` at the lowest priority, in
/// the caller's tokio runtime if it has one; its result arrives on the
/// receiver (closed without one if it panicked).
/// A thread of its own, not tokio's blocking pool, whose threads also run
/// the request path's blocking work and would keep the priority.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<oneshot::Receiver<T>> {
    let (done, result) = oneshot::channel();
    // In the caller's runtime, as on its blocking pool: the work may
    // wait on its timers and channels.
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _inside = runtime.as_ref().map(tokio::runtime::Handle::enter);
            lowest_priority();
            let _ = done.send(work());
        })?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_priority() -> i32 {
        // SAFETY: as in lowest_priority.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[tokio::test]
    async fn background_work_runs_at_the_lowest_priority_and_the_caller_keeps_its_own() {
        let before = own_priority();
        let theirs = spawn("test-background", own_priority)
            .unwrap()
            .await
            .unwrap();
        assert_eq!(theirs, 19);
        assert_eq!(own_priority(), before);
    }
}
