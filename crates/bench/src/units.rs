//! The sizes of each figure: the full suite, or `--quick` for a smoke run.

/// Sizes of one suite run.
pub struct Units {
    /// Runs per figure (the 5M backlog runs once).
    pub runs: usize,
    /// Events of figure 1.
    pub transform_events: usize,
    /// Events of the backfill of figure 2.
    pub durable_events: usize,
    /// Users per audience of figure 3's churn stream.
    pub churn_users: usize,
    /// Members of figure 4's backfill.
    pub backfill_members: usize,
    /// Figure 5: (backlog, runs).
    pub memory_sizes: Vec<(usize, usize)>,
}

impl Units {
    /// The full suite, or the small one.
    pub fn new(quick: bool) -> Units {
        if quick {
            Units {
                runs: 1,
                transform_events: 20_000,
                durable_events: 20_000,
                churn_users: 1_200,
                backfill_members: 50_000,
                memory_sizes: vec![(20_000, 1)],
            }
        } else {
            Units {
                runs: 3,
                transform_events: 200_000,
                durable_events: 200_000,
                churn_users: 6_600,
                backfill_members: 1_000_000,
                memory_sizes: vec![(100_000, 3), (1_000_000, 3), (5_000_000, 1)],
            }
        }
    }
}
