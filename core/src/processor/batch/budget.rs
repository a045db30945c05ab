//! How a batch processor splits its budget of `max_queue_size` spans between
//! the threads' lanes and the shared queue, so that together they never hold
//! more: the budget bounds every span buffered, whatever the number of threads
//! (the batch being exported, copied out of them, comes on top).
//!
//! The first lane made goes to the first thread that ends spans, often the
//! only busy one: it gets half the budget, so that a thread alone keeps the
//! long ring that makes its writes cheap (`docs/queue.md`, "Lanes"). Each
//! later lane gets half of what the one before it got, from an eighth of the
//! budget down to [`MIN_LANE`], so the lanes together hold at most three
//! quarters; the shared queue, for threads without a lane and overflow, holds
//! the rest.

/// Lanes below this many spans are not made: threads beyond them share the
/// queue instead.
const MIN_LANE: usize = 64;

/// The split of one processor's budget.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Budget {
    /// The shared queue's capacity (at least 1).
    pub(super) queue: usize,
    /// Each lane's capacity (powers of two), in the order they are made.
    pub(super) lanes: Vec<usize>,
}

impl Budget {
    /// The split of `max_queue_size` spans (at least 1) with at most
    /// `max_lanes` lanes.
    pub(super) fn split(max_queue_size: usize, max_lanes: usize) -> Budget {
        let mut lanes = Vec::new();
        // Powers of two at most `n`, none for 0.
        let floor = |n: usize| if n == 0 { 0 } else { 1 << n.ilog2() };
        let first = floor(max_queue_size / 2);
        if max_lanes > 0 && first > 0 {
            lanes.push(first);
            let mut next = floor(max_queue_size / 8);
            while lanes.len() < max_lanes && next >= MIN_LANE {
                lanes.push(next);
                next /= 2;
            }
        }
        let queue = max_queue_size.max(1) - lanes.iter().sum::<usize>();
        Budget {
            queue: queue.max(1),
            lanes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_and_queue_together_hold_the_budget() {
        for max_queue_size in [1, 2, 3, 7, 100, 2048, 3000, 65536, 1 << 21] {
            for max_lanes in [0, 1, 2, 4, 64] {
                let b = Budget::split(max_queue_size, max_lanes);
                let total = b.queue + b.lanes.iter().sum::<usize>();
                assert_eq!(total, max_queue_size, "{max_queue_size} {max_lanes}: {b:?}");
                assert!(b.queue >= max_queue_size / 4, "{b:?}");
                assert!(b.lanes.len() <= max_lanes);
                assert!(b.lanes.iter().all(|l| l.is_power_of_two()));
            }
        }
    }

    #[test]
    fn the_first_lane_has_half_and_later_ones_halve_down_to_the_minimum() {
        assert_eq!(
            Budget::split(2048, 4),
            Budget {
                queue: 2048 - 1024 - 256 - 128 - 64,
                lanes: vec![1024, 256, 128, 64]
            }
        );
        // A big host: lanes stop at the minimum, the queue takes the rest.
        assert_eq!(Budget::split(2048, 64).lanes, [1024, 256, 128, 64]);
        assert_eq!(Budget::split(65536, 4).lanes, [32768, 8192, 4096, 2048]);
        assert_eq!(Budget::split(65536, 64).lanes.len(), 9);
        // Tiny budgets: one small lane, or none.
        assert_eq!(
            Budget::split(8, 4),
            Budget {
                queue: 4,
                lanes: vec![4]
            }
        );
        assert_eq!(
            Budget::split(1, 4),
            Budget {
                queue: 1,
                lanes: vec![]
            }
        );
    }
}
