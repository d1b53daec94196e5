//! The local timeline of a calendar: its weekly open set and its holidays, as closed-form
//! cumulative open time. Everything here is integer arithmetic on local civil seconds, so the
//! cost of a query does not depend on how far apart its instants are.

/// Seconds in a local civil day.
pub(crate) const DAY: i64 = 86_400;
/// Seconds in a local civil week.
pub(crate) const WEEK: i64 = 7 * DAY;
/// Local civil seconds are counted from Monday 1969-12-29T00:00 (local), three days before the
/// Unix epoch's Thursday, so that `l.rem_euclid(WEEK)` is the offset into a Monday-first week.
pub(crate) const MONDAY_SHIFT: i64 = 3 * DAY;

/// The weekly open set: disjoint, non-touching intervals `[start, end)` of seconds into a
/// Monday-first week, sorted, within `[0, WEEK]`, with at least one open second.
#[derive(Debug)]
pub(crate) struct Week {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// `cum[i]` = open seconds before interval `i`; `cum[n]` = the weekly total.
    cum: Vec<i64>,
}

impl Week {
    /// Builds the open set from sorted, disjoint intervals (touching ones are merged).
    /// Returns `None` when there is no open time at all.
    pub(crate) fn new(sorted: &[(i64, i64)]) -> Option<Week> {
        let mut starts: Vec<i64> = Vec::new();
        let mut ends: Vec<i64> = Vec::new();
        for &(s, e) in sorted {
            debug_assert!(0 <= s && s < e && e <= WEEK);
            match ends.last_mut() {
                Some(last) if *last == s => *last = e,
                _ => {
                    starts.push(s);
                    ends.push(e);
                }
            }
        }
        if starts.is_empty() {
            return None;
        }
        let mut cum = Vec::with_capacity(starts.len() + 1);
        let mut total = 0;
        cum.push(0);
        for (s, e) in starts.iter().zip(&ends) {
            total += e - s;
            cum.push(total);
        }
        Some(Week { starts, ends, cum })
    }

    /// Open seconds per week.
    pub(crate) fn total(&self) -> i64 {
        self.cum[self.starts.len()]
    }

    /// Open seconds in `[0, r)` of one week, `0 <= r <= WEEK`.
    fn prefix(&self, r: i64) -> i64 {
        let i = self.ends.partition_point(|&e| e <= r);
        let mut open = self.cum[i];
        if i < self.starts.len() && self.starts[i] < r {
            open += r - self.starts[i];
        }
        open
    }

    /// Open seconds between local second 0 and `l` (negative before 0).
    pub(crate) fn cum(&self, l: i64) -> i64 {
        l.div_euclid(WEEK) * self.total() + self.prefix(l.rem_euclid(WEEK))
    }

    /// The earliest local second `l` with `cum(l) == v`: it ends an open stretch, so a target
    /// reached exactly at closing time is due at closing.
    pub(crate) fn inv(&self, v: i64) -> i64 {
        let total = self.total();
        let (q, r) = (v.div_euclid(total), v.rem_euclid(total));
        if r == 0 {
            return (q - 1) * WEEK + self.ends[self.ends.len() - 1];
        }
        let i = self.cum.partition_point(|&c| c < r) - 1;
        q * WEEK + self.starts[i] + (r - self.cum[i])
    }

    /// Whether local second `l` is inside the weekly open set.
    pub(crate) fn is_open(&self, l: i64) -> bool {
        let r = l.rem_euclid(WEEK);
        let i = self.ends.partition_point(|&e| e <= r);
        i < self.starts.len() && self.starts[i] <= r
    }

    /// The first local second at or after `l` inside the weekly open set.
    pub(crate) fn next_open(&self, l: i64) -> i64 {
        let (q, r) = (l.div_euclid(WEEK), l.rem_euclid(WEEK));
        let i = self.ends.partition_point(|&e| e <= r);
        if i == self.starts.len() {
            (q + 1) * WEEK + self.starts[0]
        } else {
            q * WEEK + self.starts[i].max(r)
        }
    }
}

/// The weekly open set minus full-day holidays: `open_before(l)` is a nondecreasing,
/// continuous function of local time, computed in `O(log n)`.
#[derive(Debug)]
pub(crate) struct Local {
    week: Week,
    /// Local second at which each holiday starts, sorted, unique.
    hol_start: Vec<i64>,
    /// `hol_cum[i]` = weekly open seconds removed by the holidays before `i` (length n + 1).
    hol_cum: Vec<i64>,
    /// `hol_open[i]` = `open_before(hol_start[i])`, nondecreasing.
    hol_open: Vec<i64>,
}

impl Local {
    /// `holiday_days` are local day numbers (days since Monday 1969-12-29), sorted and unique.
    pub(crate) fn new(week: Week, holiday_days: &[i64]) -> Local {
        let hol_start: Vec<i64> = holiday_days.iter().map(|d| d * DAY).collect();
        let mut hol_cum = Vec::with_capacity(hol_start.len() + 1);
        let mut hol_open = Vec::with_capacity(hol_start.len());
        let mut removed = 0;
        hol_cum.push(0);
        for &s in &hol_start {
            hol_open.push(week.cum(s) - removed);
            removed += week.cum(s + DAY) - week.cum(s);
            hol_cum.push(removed);
        }
        Local {
            week,
            hol_start,
            hol_cum,
            hol_open,
        }
    }

    /// Open seconds per week, holidays aside.
    pub(crate) fn week_total(&self) -> i64 {
        self.week.total()
    }

    /// How many holidays.
    pub(crate) fn holiday_count(&self) -> usize {
        self.hol_start.len()
    }

    /// Open seconds between local second 0 and `l`, holidays excluded.
    pub(crate) fn open_before(&self, l: i64) -> i64 {
        let k = self.hol_start.partition_point(|&s| s + DAY <= l);
        let mut removed = self.hol_cum[k];
        if let Some(&s) = self.hol_start.get(k)
            && s < l
        {
            removed += self.week.cum(l) - self.week.cum(s);
        }
        self.week.cum(l) - removed
    }

    /// The earliest local second `l` with `open_before(l) == v`.
    pub(crate) fn inv(&self, v: i64) -> i64 {
        // Holidays 0..j start before `v` is reached, so the answer lies between the end of
        // holiday j - 1 and the start of holiday j, where only the weekly set counts.
        let j = self.hol_open.partition_point(|&o| o < v);
        self.week.inv(v + self.hol_cum[j])
    }

    /// Whether local second `l` is open.
    pub(crate) fn is_open(&self, l: i64) -> bool {
        self.week.is_open(l) && !self.is_holiday(l)
    }

    fn is_holiday(&self, l: i64) -> bool {
        self.hol_start
            .binary_search(&(l.div_euclid(DAY) * DAY))
            .is_ok()
    }

    /// The first open local second at or after `l`.
    pub(crate) fn next_open(&self, mut l: i64) -> i64 {
        loop {
            let open = self.week.next_open(l);
            if !self.is_holiday(open) {
                return open;
            }
            l = (open.div_euclid(DAY) + 1) * DAY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn nine_to_five() -> Week {
        let v: Vec<_> = (0..5)
            .map(|d| (d * DAY + 9 * H, d * DAY + 17 * H))
            .collect();
        Week::new(&v).unwrap()
    }

    #[test]
    fn cum_and_inv_agree() {
        let w = nine_to_five();
        assert_eq!(w.total(), 5 * 8 * H);
        for l in (-3 * WEEK..3 * WEEK).step_by(1800) {
            let c = w.cum(l);
            let back = w.inv(c);
            assert!(back <= l && w.cum(back) == c, "l={l}");
        }
        // A target reached exactly at closing time is due at closing.
        assert_eq!(w.inv(8 * H), 17 * H);
        assert_eq!(w.inv(0), -WEEK + 4 * DAY + 17 * H);
    }

    #[test]
    fn touching_intervals_merge_and_next_open_wraps() {
        let w = Week::new(&[(0, 10), (10, 20), (WEEK - 5, WEEK)]).unwrap();
        assert_eq!(w.total(), 25);
        assert!(w.is_open(WEEK - 1) && w.is_open(WEEK) && !w.is_open(20));
        assert_eq!(w.next_open(21), WEEK - 5);
        assert_eq!(w.next_open(WEEK + 3), WEEK + 3);
        assert!(Week::new(&[]).is_none());
    }

    #[test]
    fn holidays_remove_their_day() {
        // Holiday on the Tuesday of week 0 (day 1).
        let l = Local::new(nine_to_five(), &[1]);
        assert_eq!(l.open_before(2 * DAY), 8 * H);
        assert_eq!(l.open_before(DAY + 12 * H), 8 * H);
        assert_eq!(l.inv(8 * H), 17 * H);
        assert_eq!(l.inv(8 * H + 1), 2 * DAY + 9 * H + 1);
        assert!(!l.is_open(DAY + 10 * H));
        assert_eq!(l.next_open(17 * H), 2 * DAY + 9 * H);
    }
}
