//! The default impact × urgency priority matrix (ITIL, as ServiceNow ships it), used when a
//! ticket arrives without a priority and by the fallback decision.

use crate::model::Priority;

/// Priority for an impact and an urgency, each 1 (high) to 3 (low); out-of-range values are
/// clamped into 1–3.
///
/// | impact \ urgency | 1 | 2 | 3 |
/// |---|---|---|---|
/// | 1 | p1 | p2 | p3 |
/// | 2 | p2 | p3 | p4 |
/// | 3 | p3 | p4 | p4 |
pub fn default_priority(impact: u8, urgency: u8) -> Priority {
    match impact.clamp(1, 3) + urgency.clamp(1, 3) {
        2 => Priority::P1,
        3 => Priority::P2,
        4 => Priority::P3,
        _ => Priority::P4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_corners_and_clamping() {
        assert_eq!(default_priority(1, 1), Priority::P1);
        assert_eq!(default_priority(1, 2), Priority::P2);
        assert_eq!(default_priority(2, 1), Priority::P2);
        assert_eq!(default_priority(2, 2), Priority::P3);
        assert_eq!(default_priority(1, 3), Priority::P3);
        assert_eq!(default_priority(3, 3), Priority::P4);
        assert_eq!(default_priority(0, 0), Priority::P1);
        assert_eq!(default_priority(9, 9), Priority::P4);
    }
}
