//! Which of two links to one friend both ends keep ([`keep_new_link`]): a pure rule, so
//! both ends of a simultaneous dial, or of a restart, decide alike.

use std::time::Duration;

/// One of two links to the same friend, for [`keep_new_link`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkOrigin {
    /// The link was dialled by the friend of the two with the smaller static key.
    pub dialled_by_smaller: bool,
    /// How long ago it came up (zero for the new link).
    pub age: Duration,
}

/// Whether a new link to a friend replaces the `existing` one (else the new one is
/// closed). Both ends apply the same rule, so after a simultaneous dial both keep the
/// same TCP connection:
/// - a link dialled by the smaller key always replaces (the smaller side dials only when
///   it has no link, so its old one is gone or a loser of a race);
/// - a link dialled by the larger key replaces one dialled by the larger key (the friend
///   restarted), and one dialled by the smaller key only once that is older than
///   `tie_window`: younger, the two were dialled at once and the smaller key's wins;
///   older, the larger side dialled because it lost that link (it restarted).
pub fn keep_new_link(existing: LinkOrigin, new_dialled_by_smaller: bool, tie_window: Duration) -> bool {
    new_dialled_by_smaller || !existing.dialled_by_smaller || existing.age >= tie_window
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(12);

    fn link(dialled_by_smaller: bool, age_secs: u64) -> LinkOrigin {
        LinkOrigin { dialled_by_smaller, age: Duration::from_secs(age_secs) }
    }

    #[test]
    fn the_smaller_keys_link_wins_a_race_on_both_ends() {
        // Each end sees the two links of a race in either order; both keep the smaller's.
        for (first, second) in [(true, false), (false, true)] {
            let keep_second = keep_new_link(link(first, 0), second, WINDOW);
            let kept = if keep_second { second } else { first };
            assert!(kept, "kept the larger key's link when it came {}", if second { "first" } else { "second" });
        }
    }

    #[test]
    fn a_restarted_friend_replaces_its_stale_link() {
        // Same direction: the dialler lost its link (restart), always replace.
        assert!(keep_new_link(link(false, 0), false, WINDOW));
        assert!(keep_new_link(link(true, 0), true, WINDOW));
        // The larger side redials long after the smaller's link came up: a restart.
        assert!(keep_new_link(link(true, 13), false, WINDOW));
        assert!(!keep_new_link(link(true, 11), false, WINDOW));
    }
}
