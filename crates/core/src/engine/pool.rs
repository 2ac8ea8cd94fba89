//! The compute threads of one model: a rayon pool of the chosen size that every forward pass
//! runs in. Our own matmul kernels and candle's parallel CPU ops use the pool they are called
//! from, so the thread count is a value passed here, never an environment variable set at run
//! time (which would race with other threads reading the environment).
//!
//! One exception remains: candle's own quantized kernels (used for tensor types we have no
//! kernel for) run on a process-wide pool that candle sizes once from `CANDLE_NUM_THREADS` /
//! `RAYON_NUM_THREADS`, else the physical core count.
#![allow(unsafe_code)] // thread-priority system calls; each unsafe block says why it is sound

/// A pool of compute threads (see the module documentation).
#[derive(Debug)]
pub struct ComputePool {
    pool: rayon::ThreadPool,
}

/// The pool's threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {threads} compute threads: {reason}")]
pub struct PoolError {
    /// The requested size.
    pub threads: usize,
    /// What the system said.
    pub reason: String,
}

impl ComputePool {
    /// Starts `threads` compute threads (at least one), named `llama-dialogue-compute-N`.
    pub fn new(threads: usize) -> Result<Self, PoolError> {
        Self::with_priority(threads, false)
    }

    /// [`new`](Self::new); with `background`, the threads run at a lower scheduling priority
    /// than the game's (on Linux, nice +10 for these threads only), so that when cores are
    /// short the frame loop is served first and the model waits.
    pub fn with_priority(threads: usize, background: bool) -> Result<Self, PoolError> {
        let threads = threads.max(1);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("llama-dialogue-compute-{i}"))
            .start_handler(move |_| {
                if background {
                    lower_this_threads_priority();
                }
            })
            .build()
            .map(|pool| Self { pool })
            .map_err(|e| PoolError {
                threads,
                reason: e.to_string(),
            })
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` with this pool as the current one (the calling thread waits; it does not
    /// compute).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// Lowers the calling thread's scheduling priority (Linux: nice +10 for this thread alone; a
/// failure is ignored, the thread then runs at the normal priority). Elsewhere nothing changes.
pub fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id, no memory passed.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Lets the calling thread (and the threads it starts later) run only on CPU time no other
/// thread wants (Linux: `SCHED_IDLE`; a failure is ignored). For work that may wait, such as
/// the voice threads: a frame never waits for a core they hold.
pub fn idle_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: a system call on the calling thread (pid 0) with a valid parameter struct.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

#[cfg(test)]
mod tests {
    use super::ComputePool;

    #[test]
    fn work_inside_runs_on_the_pool_of_the_chosen_size() {
        for n in [1, 3] {
            let pool = ComputePool::new(n).unwrap();
            assert_eq!(pool.threads(), n);
            let (inside, name) = pool.install(|| {
                (
                    rayon::current_num_threads(),
                    std::thread::current().name().map(str::to_owned),
                )
            });
            assert_eq!(inside, n);
            assert!(name.is_some_and(|s| s.starts_with("llama-dialogue-compute-")));
        }
        assert_eq!(ComputePool::new(0).unwrap().threads(), 1);
    }
}
