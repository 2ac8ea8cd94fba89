//! Row-parallel output for our matmul kernels: each task owns a chunk of one matrix's rows and
//! writes only those, so tasks never touch the same element.
#![allow(unsafe_code)] // disjoint row writes from parallel tasks; each unsafe block says why it is sound

use std::ops::Range;

use rayon::prelude::*;

/// The base of one output buffer, shared by tasks that write disjoint rows of it.
struct Base(*mut f32);
// SAFETY: tasks write disjoint elements (enforced by `Chunk::set`), never read.
unsafe impl Sync for Base {}

/// What one task may write: output rows `range` of matrix `matrix`, for every batch row.
pub(crate) struct Chunk<'a> {
    base: &'a Base,
    /// Which matrix of the call.
    pub matrix: usize,
    /// Its rows this task computes.
    pub range: Range<usize>,
    rows: usize,
    batch: usize,
}

impl Chunk<'_> {
    /// Stores output `(batch_row, row)`; panics outside this task's rows.
    #[inline]
    pub(crate) fn set(&self, batch_row: usize, row: usize, value: f32) {
        assert!(
            batch_row < self.batch && self.range.contains(&row),
            "write outside the task's rows"
        );
        // SAFETY: in bounds (checked above: batch_row < batch, row < rows) and owned by this
        // task alone (its row range is disjoint from every other task's).
        unsafe { *self.base.0.add(batch_row * self.rows + row) = value };
    }
}

/// Allocates one `batch × rows[i]` output per matrix and calls `f` for every chunk of
/// `chunk_rows` rows of every matrix, in parallel on the current rayon pool.
pub(crate) fn par_row_chunks(
    rows: &[usize],
    batch: usize,
    chunk_rows: usize,
    f: impl Fn(&Chunk<'_>) + Sync,
) -> Vec<Vec<f32>> {
    let mut outs: Vec<Vec<f32>> = rows.iter().map(|&n| vec![0f32; batch * n]).collect();
    let bases: Vec<Base> = outs.iter_mut().map(|o| Base(o.as_mut_ptr())).collect();
    let total: usize = rows.iter().map(|n| n.div_ceil(chunk_rows)).sum();
    (0..total).into_par_iter().for_each(|mut task| {
        for (matrix, &n) in rows.iter().enumerate() {
            let chunks = n.div_ceil(chunk_rows);
            if task < chunks {
                let r0 = task * chunk_rows;
                f(&Chunk {
                    base: &bases[matrix],
                    matrix,
                    range: r0..(r0 + chunk_rows).min(n),
                    rows: n,
                    batch,
                });
                return;
            }
            task -= chunks;
        }
    });
    outs
}
