//! Who is online when: node classes, diurnal sessions, permanent departures.
//!
//! The classes are Hyphanet's measured network (Evan Daniel, 2010, as issue 20 quotes it):
//! of the nodes online at any moment, 37% are always-on (96% uptime), 33% regular (56%)
//! and 30% occasional (16%). A class's share of the *population* is its share of the
//! online nodes divided by its uptime (an occasional node is online a sixth of the time,
//! so there are many more of them than are seen at once): 13.5%, 20.7% and 65.8%.
//!
//! Sessions are modelled hour by hour, each class by the simplest schedule that has its
//! uptime and a daily rhythm (the shapes are this model's choice; only the uptimes are
//! measured):
//! - always-on: online unless in an outage; an outage starts with probability 1/200 an
//!   hour and ends with probability 0.12 an hour (mean 8 h): uptime 0.12 / 0.125 = 96%;
//! - regular: online every day for one window of 13.44 h on average (56% of 24 h) that
//!   starts at the node's own hour of the day (uniform: owners in every time zone), give
//!   or take an hour each day;
//! - occasional: on half of the days, online for one window of 7.68 h on average from the
//!   node's own hour (0.5 × 7.68 / 24 = 16%).
//!
//! Each week a configurable fraction of the population leaves for good (spread evenly
//! over the week's hours, chosen uniformly at random); each is replaced at once by a
//! newcomer in the same place in the friend graph (the departed owner's friends befriend
//! the newcomer), with an empty store, a random location, a new class and swap age 0.
//!
//! Every draw here comes from the population's own RNG, so two runs with the same seed see
//! the same sessions and departures whatever their storage rules or load.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A node's class (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    AlwaysOn,
    Regular,
    Occasional,
}

/// Share of the nodes online at any moment, per class (Evan Daniel, 2010).
pub(crate) const ONLINE_SHARE: [f64; 3] = [0.37, 0.33, 0.30];
/// Uptime per class (Evan Daniel, 2010).
pub(crate) const UPTIME: [f64; 3] = [0.96, 0.56, 0.16];
/// Hourly probability that an always-on node's outage starts / ends.
const OUTAGE_START: f64 = 1.0 / 200.0;
const OUTAGE_END: f64 = 0.12;
/// Fraction of days an occasional node comes online at all.
const OCCASIONAL_DAYS: f64 = 0.5;

impl Class {
    pub(crate) const ALL: [Class; 3] = [Class::AlwaysOn, Class::Regular, Class::Occasional];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A class drawn by population share (online share / uptime, normalised).
    fn draw(rng: &mut ChaCha8Rng) -> Class {
        let weights: Vec<f64> = (0..3).map(|i| ONLINE_SHARE[i] / UPTIME[i]).collect();
        let mut x = rng.gen::<f64>() * weights.iter().sum::<f64>();
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Class::ALL[i];
            }
            x -= w;
        }
        Class::Occasional
    }

    /// Mean hours online in a day on which the node comes online (`None`: always-on).
    fn window_hours(self) -> Option<f64> {
        match self {
            Class::AlwaysOn => None,
            Class::Regular => Some(24.0 * UPTIME[1]),
            Class::Occasional => Some(24.0 * UPTIME[2] / OCCASIONAL_DAYS),
        }
    }
}

/// One node slot of the population (a place in the friend graph).
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) class: Class,
    /// Hour of the day its window opens.
    start_hour: u32,
    /// This day's window: online from `start_hour` (with the day's jitter) for `len` hours.
    today: (u32, u32),
    /// An always-on node in an outage.
    outage: bool,
    pub(crate) online: bool,
}

/// The whole population and its RNG.
pub(crate) struct Population {
    pub(crate) members: Vec<Member>,
    rng: ChaCha8Rng,
    /// Departures per hour (a fraction of a node: carried over).
    departures_per_hour: f64,
    owed: f64,
}

/// What one hour changed.
#[derive(Debug, Default)]
pub(crate) struct HourChanges {
    /// Nodes that came online this hour (they were offline the hour before).
    pub(crate) returned: Vec<usize>,
    /// Nodes that left for good this hour and were replaced by newcomers.
    pub(crate) replaced: Vec<usize>,
}

impl Population {
    /// `n` members, classes and hours drawn from `rng`; `weekly_departures` of them leave for
    /// good each week.
    pub(crate) fn new(n: usize, weekly_departures: f64, mut rng: ChaCha8Rng) -> Self {
        let members = (0..n).map(|_| Self::newcomer(&mut rng)).collect();
        let mut p =
            Population { members, rng, departures_per_hour: weekly_departures * n as f64 / (7.0 * 24.0), owed: 0.0 };
        p.plan_day();
        for i in 0..n {
            let online = p.online_at(i, 0);
            p.members[i].online = online;
        }
        p
    }

    fn newcomer(rng: &mut ChaCha8Rng) -> Member {
        let class = Class::draw(rng);
        Member { class, start_hour: rng.gen_range(0..24), today: (0, 0), outage: false, online: false }
    }

    /// Draws every member's window for the day about to start.
    fn plan_day(&mut self) {
        for m in &mut self.members {
            m.today = Self::window(m, &mut self.rng);
        }
    }

    fn window(m: &Member, rng: &mut ChaCha8Rng) -> (u32, u32) {
        let Some(mean) = m.class.window_hours() else { return (0, 24) };
        if m.class == Class::Occasional && !rng.gen_bool(OCCASIONAL_DAYS) {
            return (0, 0);
        }
        // Whole hours, rounded at random so the mean is exact.
        let len = mean.floor() as u32 + u32::from(rng.gen::<f64>() < mean.fract());
        let start = (m.start_hour + 24 + rng.gen_range(0..3) - 1) % 24;
        (start, len)
    }

    /// Whether member `i` is online at `hour` of the current day (outages aside).
    fn online_at(&self, i: usize, hour: u32) -> bool {
        let m = &self.members[i];
        if m.class == Class::AlwaysOn {
            return !m.outage;
        }
        let (start, len) = m.today;
        // A window may run past midnight: this day's hours before `start` belong to the
        // window of the day before only if it ran over; for simplicity a window is clipped
        // to wrap within its own day (the node is online `len` hours of this day).
        (hour + 24 - start) % 24 < len
    }

    /// Advances to hour `hour` of the day (0 starts a new day): sessions open and close,
    /// outages start and end, and this hour's departures are replaced by newcomers.
    pub(crate) fn step(&mut self, hour: u32) -> HourChanges {
        if hour == 0 {
            self.plan_day();
        }
        let mut changes = HourChanges::default();
        self.owed += self.departures_per_hour;
        while self.owed >= 1.0 {
            self.owed -= 1.0;
            let i = self.rng.gen_range(0..self.members.len());
            let mut m = Self::newcomer(&mut self.rng);
            m.today = Self::window(&m, &mut self.rng);
            self.members[i] = m;
            changes.replaced.push(i);
        }
        for i in 0..self.members.len() {
            if self.members[i].class == Class::AlwaysOn {
                let m = &mut self.members[i];
                m.outage = if m.outage { !self.rng.gen_bool(OUTAGE_END) } else { self.rng.gen_bool(OUTAGE_START) };
            }
            let now = self.online_at(i, hour);
            if now && !self.members[i].online {
                changes.returned.push(i);
            }
            self.members[i].online = now;
        }
        changes
    }

    pub(crate) fn online(&self, i: usize) -> bool {
        self.members[i].online
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Over a few weeks, each class is online about as often as measured, and the online
    /// nodes split between the classes about as measured.
    #[test]
    fn uptimes_and_online_shares_match_the_measurements() {
        let mut p = Population::new(3000, 0.0, ChaCha8Rng::seed_from_u64(3));
        let (mut on, mut count) = ([0f64; 3], [0f64; 3]);
        for day in 0..21 {
            for hour in 0..24 {
                let _ = p.step(hour);
                if day == 0 {
                    continue;
                }
                for m in &p.members {
                    count[m.class.index()] += 1.0;
                    on[m.class.index()] += f64::from(u8::from(m.online));
                }
            }
        }
        let total_on: f64 = on.iter().sum();
        for c in 0..3 {
            let uptime = on[c] / count[c];
            assert!((uptime - UPTIME[c]).abs() < 0.03, "class {c}: uptime {uptime}");
            let share = on[c] / total_on;
            assert!((share - ONLINE_SHARE[c]).abs() < 0.04, "class {c}: online share {share}");
        }
    }

    #[test]
    fn departures_replace_the_weekly_fraction() {
        let mut p = Population::new(1000, 0.1, ChaCha8Rng::seed_from_u64(4));
        let replaced: usize = (0..7 * 24).map(|h| p.step(h % 24).replaced.len()).sum();
        assert_eq!(replaced, 100);
    }
}
