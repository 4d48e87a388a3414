//! Unit tests of the swap protocol, the walk and the rule.

use super::rule::log_product;
use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn loc(x: f64) -> Location {
    Location::from_f64(x)
}

fn now() -> Instant {
    Instant::now()
}

/// Runs a direct swap (walk of length 1 by forcing htl 1) between a and b.
fn handshake(a_loc: f64, a_n: &[f64], b_loc: f64, b_n: &[f64], seed: u64) -> (Option<Outcome>, Option<Outcome>) {
    let t = now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (pa, pb) = (PeerId(1), PeerId(2));
    // Settled nodes: the rule at its base temperature (annealing has its own test).
    let mut a = Swapper::new(SwapConfig::default());
    let mut b = Swapper::new(SwapConfig::default());
    a.set_age(COOLING_SWAPS);
    b.set_age(COOLING_SWAPS);
    let mut out = Vec::new();
    let an: Vec<Location> = a_n.iter().map(|&x| loc(x)).collect();
    let bn: Vec<Location> = b_n.iter().map(|&x| loc(x)).collect();
    assert!(a.start(t, &mut rng, loc(a_loc), an, &[pb], &mut out));
    let Some((_, Message::SwapRequest { id, commitment, .. })) = out.pop() else { panic!() };
    b.on_request(t, &mut rng, (pa, id), 1, commitment, (loc(b_loc), bn), &[pa], &mut out);
    let Some((_, Message::SwapReply { commitment: cb, .. })) = out.pop() else { panic!("{out:?}") };
    a.on_reply((pb, id), cb, &mut out);
    let Some((_, Message::SwapReveal { location, neighbours, age, random, .. })) = out.pop() else { panic!() };
    assert_eq!(age, COOLING_SWAPS, "a settled node reveals only that it is settled");
    assert_eq!(a.age(), COOLING_SWAPS + 1, "starting a swap ages the initiator");
    let ob = b.on_reveal((pa, id), Reveal { location, neighbours, age, random }, &mut out);
    let Some((_, Message::SwapReveal { location, neighbours, age, random, .. })) = out.pop() else { panic!() };
    assert_eq!(b.age(), COOLING_SWAPS, "answering does not age the responder");
    let oa = a.on_reveal((pb, id), Reveal { location, neighbours, age, random }, &mut out);
    assert!(!a.busy() && !b.busy());
    (oa, ob)
}

#[test]
fn temperature_grows_with_the_links_weighed() {
    let old = COOLING_SWAPS;
    assert_eq!(temperature(6, old), 1.0, "two partners of degree 3: Sandberg's rule");
    assert_eq!(temperature(12, old), 1.0);
    assert_eq!(temperature(18, old), 1.5);
    assert_eq!(temperature(24, old), MAX_TEMPERATURE, "two partners of degree 12");
    assert_eq!(temperature(100, old), MAX_TEMPERATURE, "capped");
    // A mildly worsening swap, with every neighbour location repeated `copies` times
    // (which multiplies its cost). Counted over 256 coins (XOR of the shares ≈ c/256).
    let reveal = |location: f64, n: &[f64], copies: usize, random: [u8; 32]| Reveal {
        location: loc(location),
        neighbours: n.iter().cycle().take(n.len() * copies).map(|&x| loc(x)).collect(),
        age: old,
        random,
    };
    let (na, nb) = ([0.0, 0.05, 0.02], [0.3, 0.35, 0.4]);
    let accepted = |copies: usize| -> usize {
        (0..=255u8)
            .filter(|&c| {
                let a = reveal(0.1, &na, copies, [c; 32]);
                let b = reveal(0.105, &nb, copies, [0; 32]);
                decide(&a, &b, false) == Decision::Swap
            })
            .count()
    };
    let a = reveal(0.1, &na, 1, [0; 32]);
    let b = reveal(0.105, &nb, 1, [0; 32]);
    let cost = log_product(b.location, &a.neighbours, None) + log_product(a.location, &b.neighbours, None)
        - log_product(a.location, &a.neighbours, None)
        - log_product(b.location, &b.neighbours, None);
    let p = (-cost).exp();
    assert!(p > 0.5 && p < 0.9, "a mild worsening: {p}");
    // 6 links: T = 1, accepted with p. 24 links: four times the cost, but T = 2, so
    // p^2 (a fixed T = 1 would give p^4).
    for (copies, want) in [(1, p), (4, p * p)] {
        let got = accepted(copies) as f64 / 256.0;
        assert!((got - want).abs() < 0.02, "{copies}: accepted {got}, expected {want}");
    }
}

#[test]
fn reveals_carry_the_age_capped_at_settled() {
    let t = now();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (pa, pb) = (PeerId(1), PeerId(2));
    let (mut a, mut b) = (Swapper::new(SwapConfig::default()), Swapper::new(SwapConfig::default()));
    b.set_age(5);
    let mut out = Vec::new();
    assert!(a.start(t, &mut rng, loc(0.1), vec![loc(0.2)], &[pb], &mut out));
    let Some((_, Message::SwapRequest { id, commitment, .. })) = out.pop() else { panic!() };
    b.on_request(t, &mut rng, (pa, id), 1, commitment, (loc(0.6), vec![loc(0.7)]), &[pa], &mut out);
    let Some((_, Message::SwapReply { commitment: cb, .. })) = out.pop() else { panic!() };
    a.on_reply((pb, id), cb, &mut out);
    let Some((_, Message::SwapReveal { location, neighbours, age, random, .. })) = out.pop() else { panic!() };
    assert_eq!(age, 1, "a new node's first swap");
    b.on_reveal((pa, id), Reveal { location, neighbours, age, random }, &mut out);
    let Some((_, Message::SwapReveal { age, .. })) = out.pop() else { panic!() };
    assert_eq!(age, 5, "the responder's own age");
    // Past the cooling, every node reveals the same age, however long it has run.
    let mut old = Swapper::new(SwapConfig::default());
    old.set_age(1_000_000);
    assert!(old.start(t, &mut rng, loc(0.1), vec![loc(0.2)], &[pb], &mut out));
    assert_eq!(old.age(), 1_000_001);
    let Some((_, Message::SwapRequest { id, .. })) = out.pop() else { panic!() };
    old.on_reply((pb, id), [0; 32], &mut out);
    let Some((_, Message::SwapReveal { age, .. })) = out.pop() else { panic!() };
    assert_eq!(age, COOLING_SWAPS);
    assert_eq!(Reveal::new(loc(0.1), vec![], 1_000_001, &mut rng).age, COOLING_SWAPS);
}

#[test]
fn walk_steps_go_on_but_never_back_and_end_at_htl_or_dead_ends() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // The last hop and a dead end end the walk without a draw.
    let mut untouched = rng.clone();
    assert_eq!(walk_step(&mut rng, 1, 7u32, &[1, 2, 3]), None);
    assert_eq!(walk_step(&mut rng, 5, 7u32, &[7]), None);
    assert_eq!(walk_step(&mut rng, 5, 7u32, &[]), None);
    assert_eq!(rng.gen::<u64>(), untouched.gen::<u64>());
    for _ in 0..200 {
        let (next, left) = walk_step(&mut rng, 200, 2u32, &[1, 2, 3]).expect("goes on");
        assert!(next == 1 || next == 3, "went back to where it came from");
        assert_eq!(left, WALK_HTL_MAX - 1, "a received HTL is capped");
        assert!((WALK_HTL_MIN..=WALK_HTL_MAX).contains(&walk_htl(&mut rng)));
    }
}

#[test]
fn young_nodes_swap_hotter_and_the_older_partner_counts() {
    assert_eq!(temperature(6, 0), HEAT, "a new node of degree 3");
    assert_eq!(temperature(24, 0), HEAT * MAX_TEMPERATURE);
    assert_eq!(temperature(24, COOLING_SWAPS / 2), (1.0 + HEAT) / 2.0 * MAX_TEMPERATURE, "cools linearly");
    assert_eq!(temperature(24, COOLING_SWAPS), MAX_TEMPERATURE);
    assert_eq!(temperature(24, u32::MAX), MAX_TEMPERATURE);
    // The mild worsening of the test above, between degree-3 partners (T = 1 when
    // settled: accepted with p). Two brand-new partners take it with p^(1/HEAT); a
    // new node meeting a settled one swaps cold, whichever side is the new one.
    let reveal = |location: f64, n: &[f64], age: u32, random: [u8; 32]| Reveal {
        location: loc(location),
        neighbours: n.iter().map(|&x| loc(x)).collect(),
        age,
        random,
    };
    let (na, nb) = ([0.0, 0.05, 0.02], [0.3, 0.35, 0.4]);
    let accepted = |age_a: u32, age_b: u32| -> f64 {
        let n = (0..=255u8)
            .filter(|&c| {
                decide(&reveal(0.1, &na, age_a, [c; 32]), &reveal(0.105, &nb, age_b, [0; 32]), false) == Decision::Swap
            })
            .count();
        n as f64 / 256.0
    };
    let p = accepted(COOLING_SWAPS, COOLING_SWAPS);
    assert!(p > 0.5 && p < 0.9, "a mild worsening: {p}");
    let hot = p.powf(1.0 / HEAT);
    assert!((accepted(0, 0) - hot).abs() < 0.02, "two new nodes: {} against {hot}", accepted(0, 0));
    assert!((accepted(0, COOLING_SWAPS) - p).abs() < 0.01, "the settled partner's age counts");
    assert!((accepted(COOLING_SWAPS, 0) - p).abs() < 0.01, "either way round");
}

#[test]
fn misplaced_pair_swaps() {
    // a sits among b's neighbours and b among a's: swapping shortens every link.
    let (oa, ob) = handshake(0.1, &[0.58, 0.6, 0.62], 0.6, &[0.08, 0.1, 0.12], 1);
    assert_eq!(oa, Some(Outcome::Swapped(loc(0.6))));
    assert_eq!(ob, Some(Outcome::Swapped(loc(0.1))));
}

#[test]
fn both_sides_always_agree() {
    for seed in 0..200 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let an: Vec<f64> = (0..4).map(|_| rng.gen()).collect();
        let bn: Vec<f64> = (0..4).map(|_| rng.gen()).collect();
        let (oa, ob) = handshake(rng.gen(), &an, rng.gen(), &bn, seed);
        match (oa, ob) {
            (Some(Outcome::Swapped(_)), Some(Outcome::Swapped(_))) | (Some(Outcome::Kept), Some(Outcome::Kept)) => {}
            (Some(Outcome::Aborted(_)), Some(Outcome::Aborted(_))) => {}
            other => panic!("seed {seed}: sides disagree: {other:?}"),
        }
    }
}

#[test]
fn well_placed_pair_mostly_keeps() {
    let mut kept = 0;
    for seed in 0..100 {
        let (oa, _) = handshake(0.1, &[0.09, 0.11, 0.12], 0.6, &[0.59, 0.61, 0.62], seed);
        kept += usize::from(oa == Some(Outcome::Kept));
    }
    assert!(kept > 95, "kept {kept}");
}

#[test]
fn bad_reveal_aborts() {
    let t = now();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (pa, pb) = (PeerId(1), PeerId(2));
    let mut b = Swapper::new(SwapConfig::default());
    let mut out = Vec::new();
    let honest = Reveal { location: loc(0.3), neighbours: vec![loc(0.31)], age: 0, random: [1; 32] };
    b.on_request(t, &mut rng, (pa, 5), 1, honest.commitment(), (loc(0.5), vec![loc(0.52)]), &[pa], &mut out);
    out.clear();
    // The reveal claims another location than the one committed to.
    let lie = Reveal { location: loc(0.9), ..honest };
    assert_eq!(b.on_reveal((pa, 5), lie, &mut out), Some(Outcome::Aborted(Abort::BadReveal)));
    assert_eq!(out, vec![(pa, Message::SwapRejected { id: 5 })], "B must not reveal after a bad reveal");
    let _ = pb;
}

#[test]
fn relay_forwards_both_ways_and_forgets() {
    let t = now();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (up, down) = (PeerId(1), PeerId(2));
    let mut r = Swapper::new(SwapConfig::default());
    let mut out = Vec::new();
    r.on_request(t, &mut rng, (up, 7), 5, [9; 32], (loc(0.5), vec![]), &[up, down], &mut out);
    let Some((to, Message::SwapRequest { id, htl: 4, commitment: [9, ..] })) = out.pop() else { panic!() };
    assert_eq!(to, down);
    assert!(!r.busy());
    r.on_reply((down, id), [8; 32], &mut out);
    assert_eq!(out.pop(), Some((up, Message::SwapReply { id: 7, commitment: [8; 32] })));
    let rv = Reveal { location: loc(0.1), neighbours: vec![], age: 0, random: [0; 32] };
    assert_eq!(r.on_reveal((up, 7), rv.clone(), &mut out), None);
    assert_eq!(out.pop(), Some((down, rv.message(id))));
    assert_eq!(r.on_reveal((down, id), rv.clone(), &mut out), None);
    assert_eq!(out.pop(), Some((up, rv.message(7))));
    assert_eq!(r.relays(), 0);
}

#[test]
fn busy_responder_rejects_and_timeouts_clear() {
    let t = now();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut s = Swapper::new(SwapConfig::default());
    let mut out = Vec::new();
    assert!(s.start(t, &mut rng, loc(0.2), vec![loc(0.3)], &[PeerId(1)], &mut out));
    assert!(!s.start(t, &mut rng, loc(0.2), vec![loc(0.3)], &[PeerId(1)], &mut out));
    out.clear();
    s.on_request(t, &mut rng, (PeerId(2), 1), 1, [0; 32], (loc(0.2), vec![]), &[PeerId(2)], &mut out);
    assert_eq!(out, vec![(PeerId(2), Message::SwapRejected { id: 1 })]);
    assert_eq!(s.on_timeout(t + Duration::from_secs(31)), Some(Outcome::Aborted(Abort::TimedOut)));
    assert!(!s.busy() && s.next_deadline().is_none());
}

#[test]
fn plausibility_rejects_far_claimed_neighbours() {
    // Pitch Black: a location next to the target, neighbours on the far side.
    let far = Reveal {
        location: loc(0.25),
        neighbours: (0..12).map(|i| loc(0.75 + i as f64 * 1e-4)).collect(),
        age: 0,
        random: [0; 32],
    };
    assert!(!plausible(&far));
    // An unswapped honest node: uniformly random neighbours pass (almost always).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut passed = 0;
    for _ in 0..1000 {
        let r = Reveal {
            location: Location(rng.gen()),
            neighbours: (0..12).map(|_| Location(rng.gen())).collect(),
            age: 0,
            random: [0; 32],
        };
        passed += usize::from(plausible(&r));
    }
    assert!(passed > 990, "{passed}");
    // A converged honest node (close neighbours) passes; a node with no neighbour fails.
    assert!(plausible(&Reveal {
        location: loc(0.5),
        neighbours: vec![loc(0.49), loc(0.52), loc(0.9)],
        age: 0,
        random: [0; 32]
    }));
    assert!(!plausible(&Reveal { location: loc(0.5), neighbours: vec![], age: 0, random: [0; 32] }));
}

/// Issue 14, item 9: one friend sending walk after walk. Before the per-peer quota, 1,024
/// of them filled the relay table, the next one ended here and took the one swap session,
/// and an honest friend's walk was then turned away. Now the flooder's walks past
/// [`MAX_RELAYS_PER_PEER`] are rejected, and the honest walk is relayed.
#[test]
fn one_friend_cannot_fill_the_relay_table_or_take_the_session() {
    let t = now();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (flooder, honest, other) = (PeerId(1), PeerId(2), PeerId(3));
    let peers = [flooder, honest, other];
    let mut r = Swapper::new(SwapConfig::default());
    let mut out = Vec::new();
    for id in 0..(MAX_RELAYS as u64 + 100) {
        r.on_request(t, &mut rng, (flooder, id), 5, [1; 32], (loc(0.5), vec![]), &peers, &mut out);
    }
    assert_eq!(r.relays(), MAX_RELAYS_PER_PEER);
    assert!(!r.busy(), "no flooder walk ended here");
    let rejected = out.iter().filter(|(to, m)| *to == flooder && matches!(m, Message::SwapRejected { .. })).count();
    assert_eq!(rejected, MAX_RELAYS + 100 - MAX_RELAYS_PER_PEER);
    out.clear();
    r.on_request(t, &mut rng, (honest, 7), 5, [2; 32], (loc(0.5), vec![]), &peers, &mut out);
    assert!(matches!(out.as_slice(), [(to, Message::SwapRequest { .. })] if *to != honest), "{out:?}");
    assert_eq!(r.relays(), MAX_RELAYS_PER_PEER + 1);
}
