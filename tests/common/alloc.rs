//! A global allocator that measures the largest single allocation a closure makes on its own
//! thread: the property tests' "never an allocation beyond a stated bound".
//!
//! A test binary installs it once (`#[global_allocator]` in its `main.rs`); other threads and
//! other tests are not counted, so tests still run in parallel.
#![allow(unsafe_code)] // a `GlobalAlloc` is unsafe to implement; it forwards to `System`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, watched.
pub struct Tracking;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// How many allocations were measured in all (so a test can tell the allocator is installed).
static MEASURED: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    // `try_with`: during thread teardown the locals may be gone.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            MEASURED.fetch_add(1, Ordering::Relaxed);
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; `note` only reads and
// writes thread-local cells and one atomic, and never allocates.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its result with the largest single allocation (bytes) it made on this
/// thread. Panics if the allocator is not installed (nothing was measured while `f` allocated).
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    WATCHING.with(|w| w.set(true));
    let before = MEASURED.load(Ordering::Relaxed);
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
    assert!(
        MEASURED.load(Ordering::Relaxed) > before,
        "the tracking allocator is not installed in this test binary"
    );
    LARGEST.with(|l| l.set(0));
    let out = f();
    WATCHING.with(|w| w.set(false));
    (out, LARGEST.with(Cell::get))
}

/// The number of cases a property test runs: `PROPTEST_CASES` when set (the long campaign), else
/// `default` (what CI runs).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
