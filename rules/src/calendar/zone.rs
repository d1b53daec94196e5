//! A time zone as a sequence of constant-offset spans. Between two transitions local time is
//! real time plus a fixed offset, so the calendar math works span by span; the transitions of
//! the years SLAs live in are tabulated once per calendar so each lookup is a binary search.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// First second of the tabulated range: 1970-01-01T00:00:00Z.
const TABLE_FROM: i64 = 0;
/// End of the tabulated range: 2100-01-01T00:00:00Z.
const TABLE_TO: i64 = 4_102_444_800;

/// A time zone with its transitions between 1970 and 2100 tabulated.
#[derive(Debug)]
pub(crate) struct Zone {
    tz: TimeZone,
    /// Transition instants in `(TABLE_FROM, TABLE_TO)`, sorted.
    transitions: Vec<i64>,
    /// `offsets[i]` = UTC offset in seconds before `transitions[i]` (and after the previous one).
    offsets: Vec<i32>,
}

impl Zone {
    pub(crate) fn new(tz: TimeZone) -> Zone {
        let from = Timestamp::from_second(TABLE_FROM).expect("1970 is in range");
        let mut transitions = Vec::new();
        let mut offsets = vec![tz.to_offset(from).seconds()];
        for t in tz.following(from) {
            let at = t.timestamp().as_second();
            if at >= TABLE_TO {
                break;
            }
            transitions.push(at);
            offsets.push(t.offset().seconds());
        }
        Zone {
            tz,
            transitions,
            offsets,
        }
    }

    pub(crate) fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The UTC offset at second `t`, and the next second after `t` at which it may change.
    #[inline]
    pub(crate) fn span(&self, t: i64) -> (i64, Option<i64>) {
        if (TABLE_FROM..TABLE_TO).contains(&t) {
            let i = self.transitions.partition_point(|&x| x <= t);
            let next = self.transitions.get(i).copied().unwrap_or(TABLE_TO);
            return (i64::from(self.offsets[i]), Some(next));
        }
        // Outside the table: ask the zone itself (out-of-range seconds were rejected before).
        let ts = Timestamp::from_second(t).expect("caller checked the range");
        let offset = i64::from(self.tz.to_offset(ts).seconds());
        let next = self.tz.following(ts).next();
        (offset, next.map(|tr| tr.timestamp().as_second()))
    }

    /// The UTC offset at second `t`.
    #[inline]
    pub(crate) fn offset(&self, t: i64) -> i64 {
        if (TABLE_FROM..TABLE_TO).contains(&t) {
            let i = self.transitions.partition_point(|&x| x <= t);
            return i64::from(self.offsets[i]);
        }
        let ts = Timestamp::from_second(t).expect("caller checked the range");
        i64::from(self.tz.to_offset(ts).seconds())
    }
}
